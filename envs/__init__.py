"""Host-side environments: run model-written programs, render them, find visual defects, trace
each defect to the statements that caused it, and score them. Everything returns a Feedback.

Contracts: feedback (Feedback, Defect, Element, ExecError), task (Task), geometry (boxes,
polygons), code_extract (finding the program in a reply). Infrastructure: sandbox /
sandbox_server / isolation (hostile code in walled-off processes), program (compile, run,
statement spans), outcome (sandbox run -> Feedback), registry (domain -> env), pool (worker
processes streaming Feedback), teacher_context (Feedback -> the teacher's text), check (CLI).
Domains: chart (matplotlib), web (HTML in Chromium), slide (python-pptx, HTML slides).

Never imports jax: envs run in plain worker processes, and the trainer imports them too.
"""
