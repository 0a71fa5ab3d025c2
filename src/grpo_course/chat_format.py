"""The course's answer format: reasoning in think tags, the final answer in answer tags.

Every stage uses these names: the tiny model is trained to write this format, the
tag rewards check it, the prompts ask for it, the evaluators parse it.
"""

from __future__ import annotations

REASONING_START = "<think>"
REASONING_END = "</think>"
ANSWER_START = "<answer>"
ANSWER_END = "</answer>"

SYSTEM_PROMPT = (
    f"Solve the problem step by step. Write your reasoning between {REASONING_START} and {REASONING_END}, "
    f"then only the final number between {ANSWER_START} and {ANSWER_END}."
)


def format_response(reasoning: str, answer: str) -> str:
    """A completion in the course's format, e.g. for SFT demonstrations."""
    return f"{REASONING_START}\n{reasoning.strip()}\n{REASONING_END}\n{ANSWER_START}{answer}{ANSWER_END}"


def build_messages(question: str, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict]:
    """The chat-format prompt (TRL's conversational ``prompt`` column) for one question."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": question})
    return messages


def prompt_token_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat prompt exactly as GRPOTrainer builds them (chat template + generation prompt)."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = out["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)
