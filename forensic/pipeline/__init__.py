"""The pipeline: what runs between reading the evidence and signing the record.

* `steps`: the plan (every problem of a recipe against its source and policy), applying a
  step, ENFSI warnings, and the one definition of the recorded step and run payloads;
* `sources`: exhibits and still run outputs as inputs, read through the case store, checked;
* `still` and `video` (with `stream` and `sinks`): the two ways a run computes and records;
* `run`: `run_recipe`, plan then dispatch;
* `replay`: re-running a recorded run and judging every step, still and video alike.
"""

from __future__ import annotations
