"""Timing plans: the :class:`~greenwave.controllers.plans.timing.TimingPlan` type and its JSON
form (:mod:`.timing`), where its stages sit in the signals' programs and its basic checks
(:mod:`.layout`), its flat arrays (:mod:`.arrays`), the safety rules and validator
(:mod:`.safety_rules`, :mod:`.safety`) and the SUMO program writer (:mod:`.sumo_writer`)."""
