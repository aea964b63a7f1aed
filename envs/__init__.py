"""Host-side environments: run model-written programs, render them, find visual defects, trace
each defect to the statements that caused it, and score them. Everything returns a Feedback.

Contracts: feedback (Feedback, Defect, Element, ExecError), task (Task), geometry (boxes,
polygons), code_extract (finding the program in a reply). Infrastructure: sandbox /
sandbox_server / bwrap / isolation / seccomp (hostile code in walled-off processes: bubblewrap
namespaces, an unprivileged uid, a seccomp filter, Python-level guards), program (compile, run,
statement spans), outcome (sandbox run -> the start of a Feedback), pixels (what the judge reads
from renders), reward (shared reward parts), registry (domain -> env), pool (worker processes
streaming Feedback), teacher_context (Feedback -> the teacher's text), check (CLI).
Model code runs only in sandboxes and returns artifacts; every env judges them in its own
process, which never runs model code (README, Security).
Domains: chart (matplotlib), web (HTML in Chromium), slide (python-pptx, HTML slides).

Never imports jax: envs run in plain worker processes, and the trainer imports them too.
"""
