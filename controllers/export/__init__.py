"""Export of validated timing plans to the street: the common part behind ``greenwave export``
(:mod:`.common`: targets, whole-second quantisation, validation, the format switch) and one
module per format (:mod:`.utdf` Synchro UTDF, :mod:`.ntcip` NTCIP 1202 by SNMP,
:mod:`.gbt20999` GB/T 20999-2017 frames)."""
