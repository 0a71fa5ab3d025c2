"""R1-Zero on a laptop: step-by-step reasoning emerges from a reward that reads only the answer.

Modules: ``task`` (chain problems, the two ways to answer, :data:`~.task.REWARD_NAMES`), ``build``
(the starting model under ``data/emergence``), ``measure`` (held-out step-writing, length, accuracy),
``lab`` (GRPO with TRL, per-step measurements, the coin-flip control), ``plots`` (the R1-style figure),
``command`` (``grpo-course build-emergence`` and ``grpo-course emergence-lab``).
Importing this package does not import torch.
"""
