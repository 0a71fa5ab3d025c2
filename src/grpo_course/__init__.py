"""grpo_course: the package behind the GRPO course notebooks.

One module per stage (``advantages``/``objective`` for 01, ``rewards`` for 02,
``lora`` for 03, ``train`` for 04, ``evaluate`` for 05) plus ``hardware`` (the
one profile switch), ``bootstrap`` (notebook set-up) and ``tiny`` (the CPU lab).

Importing this package never imports torch, Unsloth or vLLM: notebooks import
it before the Colab install cell has finished pinning the GPU stack.
"""

__version__ = "0.1.0"
