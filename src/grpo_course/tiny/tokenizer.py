"""The tiny model's word-level tokenizer: one token per word, number, tag, punctuation mark or newline.

A token carries its own leading space (``" apples"``, ``" 24"``, ``"24"``), so decoding is plain
concatenation and ``decode(encode(text)) == text`` for every text the lab produces: completions come
back in exactly the course's format. Numbers ``0..MAX_NUMBER`` are single tokens (with and without a
leading space): the tiny model learns arithmetic facts, not digit-by-digit carrying.

The chat template writes ``<user> question`` then ``<assistant>`` and drops system messages: the tiny
model only ever solves one kind of task, so the instructions would cost tokens and teach nothing.
"""

from __future__ import annotations

import random

from .. import chat_format as cf
from .problems import MAX_NUMBER, generate_problems

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
USER, ASSISTANT = "<user>", "<assistant>"
TAGS = [cf.REASONING_START, cf.REASONING_END, cf.ANSWER_START, cf.ANSWER_END, USER, ASSISTANT]
# Tags first, then words and numbers with an optional leading space, newlines, any other single character.
SPLIT_PATTERN = "|".join([*(t.replace("/", "\\/") for t in TAGS), " ?[A-Za-z]+", " ?[0-9]+", "\n", " ?[^\\sA-Za-z0-9]",
                          "\\s"])
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ '" + USER + " ' + message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ '" + ASSISTANT + "\\n' + message['content'] + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '" + ASSISTANT + "\\n' }}{%- endif -%}"
)


def _pre_tokenizer():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")


def build_vocab(corpus_size: int = 4000) -> list[str]:
    """Every piece the pre-tokenizer cuts from a sample of questions and demonstrations, plus all numbers."""
    from .demonstrator import solve

    pre = _pre_tokenizer()
    pieces: set[str] = set()
    rng = random.Random(0)
    for p in generate_problems(corpus_size, seed=987654):
        text = f"{USER} {p['question']}\n{ASSISTANT}\n{solve(p, flawed=rng.random() < 0.5)}"
        pieces.update(piece for piece, _ in pre.pre_tokenize_str(text))
    numbers = [f"{s}{n}" for n in range(MAX_NUMBER + 1) for s in ("", " ")]
    words = sorted(pieces - set(TAGS) - set(numbers))
    return [PAD, EOS, UNK, *TAGS, *numbers, *words]


def build_tokenizer(vocab: list[str] | None = None):
    """A ``PreTrainedTokenizerFast`` with the course's chat template (save it with ``save_pretrained``)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = vocab or build_vocab()
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab)}, unk_token=UNK))
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.Fuse()
    # Left padding to the longest row, stated here so the saved tokenizer.json is the same whether or not
    # anything padded a batch before it was saved (a padded call used to switch it on as a side effect).
    tok.enable_padding(direction="left", pad_id=vocab.index(PAD), pad_token=PAD)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                 padding_side="left", model_max_length=256)
    hf.chat_template = CHAT_TEMPLATE
    return hf
