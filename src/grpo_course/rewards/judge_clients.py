"""HTTP clients for LLM judges: Anthropic Messages, Google Gemini ``generateContent``, and any
OpenAI-compatible ``/v1/chat/completions`` server (OpenAI itself, a local vLLM server, ...).

Each client turns one (system, user) prompt into the judge's reply text plus token counts. It is
async (``httpx.AsyncClient``), retries 429 / 5xx / 529 / timeouts / dropped connections with
exponential backoff and jitter, waits at least as long as the server's ``Retry-After`` asks, and
never retries what waiting cannot fix (a bad key, a bad request, an exhausted spending quota).

Wire formats (checked against the providers' public API references):

- Anthropic: ``POST {base}/v1/messages`` with headers ``x-api-key`` and ``anthropic-version:
  2023-06-01``; body ``model``, ``max_tokens``, ``system``, ``messages``; reply text in the
  ``content`` blocks of type ``text``; ``usage.input_tokens`` / ``usage.output_tokens``.
- Gemini: ``POST {base}/v1beta/models/{model}:generateContent`` with the key in the
  ``x-goog-api-key`` header (never in the URL, where logs and exception messages would show it);
  body ``systemInstruction``, ``contents``, ``generationConfig``; reply text in
  ``candidates[0].content.parts[].text``; ``usageMetadata.promptTokenCount`` /
  ``candidatesTokenCount`` (+ ``thoughtsTokenCount``, billed as output).
- OpenAI-compatible: ``POST {base}/v1/chat/completions`` with ``Authorization: Bearer`` (optional
  for a local server); reply in ``choices[0].message.content``; ``usage.prompt_tokens`` /
  ``completion_tokens``.

API keys come from the environment or, on Colab, from ``google.colab.userdata`` (imported lazily).
They live in :class:`Secret` objects whose ``repr`` is masked, are sent only in request headers, and
are scrubbed from every error message; exceptions are raised ``from None`` so no httpx request
(whose headers hold the key) hangs off a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

logger = logging.getLogger("grpo_course.rewards.judges")

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
OPENAI_BASE_URL = "https://api.openai.com"

# Prices in USD per million tokens (input, output). ASSUMPTIONS, not live data: list prices for
# standard (non-batch, non-cached, prompts under 200k tokens) requests as published on
# https://platform.claude.com/docs/en/about-claude/pricing and
# https://ai.google.dev/gemini-api/docs/pricing around the end of 2025. Check them before you
# rely on a budget, or pass price_in / price_out to the judge. Matched by longest model-name prefix,
# so dated ids such as "claude-haiku-4-5-20251001" find their family.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-opus-4-1": (15.00, 75.00),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
}
# A model missing from the table is priced at the most expensive row, so a budget errs on the safe side.
FALLBACK_PRICE_USD_PER_MTOK = (15.00, 75.00)

# What a 429 says when waiting will not help (money, not rate): Anthropic's spend cap, OpenAI's
# exhausted credits, Gemini's per-day quota.
_NON_RETRYABLE_429_MARKERS = (
    "enforced_spend_limit_reached",
    "insufficient_quota",
    "billing_hard_limit",
    "perday",
)
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


class Secret:
    """An API key that does not show itself: ``repr``/``str`` are masked; ``reveal()`` is for headers only."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("an API key must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __reduce__(self):  # never pickle a key into a checkpoint or a worker process
        raise TypeError("Secret objects cannot be pickled")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _colab_secret(name: str) -> str | None:
    """A Colab secret by name, or None off Colab / when missing / when notebook access is not granted."""
    try:
        from google.colab import userdata  # noqa: PLC0415 - Colab only, imported lazily
    except Exception:
        return None
    try:
        value = userdata.get(name)
    except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException ...
        return None
    return value if isinstance(value, str) and value.strip() else None


def resolve_api_key(names: tuple[str, ...] | list[str]) -> Secret | None:
    """The first of ``names`` set in the environment, else in Colab's secrets, else None."""
    for name in names:
        value = os.environ.get(name)
        if value and value.strip():
            return Secret(value)
    for name in names:
        value = _colab_secret(name)
        if value:
            return Secret(value)
    return None


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """``text`` with every secret value replaced by ``***`` (error bodies sometimes echo a key)."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


class JudgeError(Exception):
    """A judge call that produced no usable reply. ``category`` is a short machine-readable reason
    (``http_401``, ``http_429``, ``timeout``, ``connection``, ``bad_response``, ``no_api_key``,
    ``blocked``, ``empty_response``, ``retry_after_too_long``, ``quota``); the message never holds a key."""

    def __init__(
        self,
        category: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(f"{category}: {message}")
        self.category = category
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 0


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter: attempt ``k`` (1-based) waits a uniform time in
    ``[d/2, d]`` with ``d = min(max_delay, base_delay * 2**(k-1))``, or the server's ``Retry-After``
    when that is longer. A ``Retry-After`` above ``max_retry_after`` fails the call at once (a training
    step should not sleep for an hour)."""

    max_retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        rng = rng or random
        d = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        jittered = d / 2 + rng.uniform(0, d / 2)
        if retry_after is not None:
            return max(retry_after, jittered)
        return jittered


def parse_retry_after(headers: httpx.Headers, body: Any = None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds, fractional seconds or an
    HTTP date), or a Gemini ``google.rpc.RetryInfo`` detail (``"retryDelay": "30s"``); None if absent."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            v = float(ms) / 1000.0
            if math.isfinite(v) and v >= 0:
                return v
    ra = headers.get("retry-after")
    if ra:
        ra = ra.strip()
        try:
            v = float(ra)
            if math.isfinite(v) and v >= 0:
                return v
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(ra)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - (time.time() if now is None else now))
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        for detail in body["error"].get("details") or []:
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*", str(detail.get("retryDelay", "")))
                if m:
                    return float(m.group(1))
    return None


@dataclass
class Reply:
    """A judge's raw answer: its text and what it cost in tokens (None when the server did not say)."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    attempts: int = 1
    finish_reason: str | None = None


def _price_for(model: str) -> tuple[float, float] | None:
    best = None
    for prefix, price in PRICES_USD_PER_MTOK.items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, price)
    return best[1] if best else None


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


@dataclass
class Judge:
    """One LLM judge: which API, which model, its key, prices, limits. Subclasses speak each wire format.

    ``name`` identifies the judge in metrics and in the cache key. ``price_in`` / ``price_out`` are USD
    per million tokens; left as None they come from :data:`PRICES_USD_PER_MTOK` (or the conservative
    fallback for an unknown model, with a warning). ``max_concurrency`` caps this judge's requests in
    flight on top of the reward's global cap."""

    name: str = ""
    model: str = ""
    base_url: str = ""
    api_key: Secret | str | None = field(default=None, repr=False)
    api_key_env: tuple[str, ...] = ()
    require_key: bool = True
    price_in: float | None = None
    price_out: float | None = None
    max_tokens: int = 400
    temperature: float = 0.0
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_concurrency: int | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)

    provider: ClassVar[str] = "base"

    def __post_init__(self):
        if isinstance(self.api_key, str):
            self.api_key = Secret(self.api_key)
        if not self.name:
            self.name = self.provider
        self.base_url = self.base_url.rstrip("/")
        if self.price_in is None or self.price_out is None:
            price = self.default_price()
            if price is None:
                price = FALLBACK_PRICE_USD_PER_MTOK
                logger.warning(
                    "judge %s: no known price for model %r; assuming $%.2f/$%.2f per million "
                    "tokens (pass price_in/price_out to change)",
                    self.name,
                    self.model,
                    *price,
                )
            self.price_in = price[0] if self.price_in is None else self.price_in
            self.price_out = price[1] if self.price_out is None else self.price_out

    def default_price(self) -> tuple[float, float] | None:
        return _price_for(self.model)

    # ---- keys -----------------------------------------------------------------------------
    def key(self) -> Secret | None:
        """The API key (explicit, else environment, else Colab secret); resolved once and kept."""
        if self.api_key is None and self.api_key_env:
            self.api_key = resolve_api_key(self.api_key_env)
        return self.api_key  # type: ignore[return-value]

    # ---- money ----------------------------------------------------------------------------
    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_in + output_tokens * self.price_out) / 1e6  # type: ignore[operator]

    @staticmethod
    def estimate_tokens(text: str) -> int:
        """A deliberately high token estimate (UTF-8 bytes / 3) used to reserve budget before a call."""
        return max(1, math.ceil(len(text.encode("utf-8")) / 3))

    def worst_case_cost(self, system: str, user: str) -> float:
        return self.cost(self.estimate_tokens(system) + self.estimate_tokens(user) + 8, self.max_tokens)

    # ---- wire format (subclasses) ------------------------------------------------------------
    def build_request(self, system: str, user: str, key: Secret | None) -> tuple[str, dict, dict]:
        raise NotImplementedError

    def parse_response(self, data: Any) -> Reply:
        raise NotImplementedError

    # ---- the call -----------------------------------------------------------------------------
    async def complete(
        self,
        http: httpx.AsyncClient,
        system: str,
        user: str,
        *,
        semaphore: asyncio.Semaphore | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> Reply:
        """Send one prompt, with retries; return the reply or raise :class:`JudgeError`."""
        key = self.key()
        if key is None and self.require_key:
            names = " or ".join(self.api_key_env) or "an api_key"
            raise JudgeError(
                "no_api_key",
                f"judge {self.name!r} has no API key: set {names} in the "
                "environment (or as a Colab secret), or pass api_key=",
            )
        secrets = [key.reveal()] if key is not None else []
        url, headers, body = self.build_request(system, user, key)
        attempt = 0
        while True:
            attempt += 1
            err = await self._attempt(http, url, headers, body, secrets, semaphore)
            if isinstance(err, Reply):
                err.attempts = attempt
                return err
            retry_after = err.retry_after
            if err.retryable and retry_after is not None and retry_after > self.retry.max_retry_after:
                err = JudgeError(
                    "retry_after_too_long",
                    f"server asked to wait {retry_after:.0f} s "
                    f"(> max_retry_after={self.retry.max_retry_after:.0f} s) after {err.category}",
                    status=err.status,
                )
            if not err.retryable or attempt > self.retry.max_retries:
                err.attempts = attempt
                raise err from None
            wait = self.retry.delay(attempt, retry_after)
            logger.info(
                "judge %s: %s (attempt %d/%d), retrying in %.2f s",
                self.name,
                err.category,
                attempt,
                self.retry.max_retries + 1,
                wait,
            )
            await sleep(wait)

    async def _attempt(self, http, url, headers, body, secrets, semaphore) -> Reply | JudgeError:
        sem = semaphore if semaphore is not None else contextlib.nullcontext()
        try:
            async with sem:
                resp = await http.post(url, headers=headers, json=body, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            return JudgeError(
                "timeout", f"no reply within {self.timeout:g} s ({type(exc).__name__})", retryable=True
            )
        except httpx.TransportError as exc:
            return JudgeError(
                "connection", f"{type(exc).__name__}: {redact(str(exc), secrets)[:200]}", retryable=True
            )
        raw = resp.text
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if resp.status_code == 200:
            if data is None:
                return JudgeError(
                    "bad_response",
                    f"HTTP 200 but the body is not JSON: {redact(raw, secrets)[:120]!r}",
                    status=200,
                )
            try:
                return self.parse_response(data)
            except JudgeError as exc:
                exc.message = redact(exc.message, secrets)
                exc.args = (redact(str(exc.args[0]), secrets),)
                return exc
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
                return JudgeError(
                    "bad_response", f"unexpected response shape ({type(exc).__name__})", status=200
                )
        status = resp.status_code
        detail = redact(_error_message(data, raw), secrets)[:300]
        retry_after = parse_retry_after(resp.headers, data)
        if status == 429 and any(m in raw.lower() for m in _NON_RETRYABLE_429_MARKERS):
            return JudgeError(
                "quota", f"HTTP 429 spending/quota limit (not retried): {detail}", status=status
            )
        return JudgeError(
            f"http_{status}",
            detail or resp.reason_phrase,
            status=status,
            retryable=status in _RETRYABLE_STATUS,
            retry_after=retry_after,
        )


def _error_message(data: Any, raw: str) -> str:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            parts: list[str] = []
            for k in ("type", "status", "code", "message"):
                v = err.get(k)
                if v is not None and str(v) not in parts:
                    parts.append(str(v))
            return " ".join(parts)
        if isinstance(err, str):
            return err
    return raw.strip().replace("\n", " ")


@dataclass
class AnthropicJudge(Judge):
    """Claude through the Anthropic Messages API."""

    provider: ClassVar[str] = "anthropic"

    def build_request(self, system, user, key):
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if key is not None:
            headers["x-api-key"] = key.reveal()
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            **self.extra_body,
        }
        return f"{self.base_url}/v1/messages", headers, body

    def parse_response(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise JudgeError("bad_response", "Anthropic reply without a content list", status=200)
        text = "".join(
            b["text"]
            for b in data["content"]
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        if not text.strip():
            raise JudgeError(
                "empty_response", f"no text blocks (stop_reason={data.get('stop_reason')})", status=200
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Reply(
            text,
            _int_or_none(usage.get("input_tokens")),
            _int_or_none(usage.get("output_tokens")),
            finish_reason=data.get("stop_reason"),
        )


@dataclass
class GeminiJudge(Judge):
    """Gemini through the Gemini API's ``generateContent`` (API-key auth, ``x-goog-api-key`` header)."""

    provider: ClassVar[str] = "gemini"

    def build_request(self, system, user, key):
        model = self.model.removeprefix("models/")
        headers = {"content-type": "application/json"}
        if key is not None:
            headers["x-goog-api-key"] = key.reveal()
        gen = {
            "temperature": self.temperature,
            "maxOutputTokens": self.max_tokens,
            "responseMimeType": "application/json",
        }
        gen.update(self.extra_body.get("generationConfig", {}))
        body = {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "generationConfig": gen,
            **{k: v for k, v in self.extra_body.items() if k != "generationConfig"},
        }
        return f"{self.base_url}/v1beta/models/{model}:generateContent", headers, body

    def parse_response(self, data):
        if not isinstance(data, dict):
            raise JudgeError("bad_response", "Gemini reply is not a JSON object", status=200)
        cands = data.get("candidates")
        if not isinstance(cands, list) or not cands:
            feedback = data.get("promptFeedback") if isinstance(data.get("promptFeedback"), dict) else {}
            if feedback.get("blockReason"):
                raise JudgeError("blocked", f"prompt blocked ({feedback['blockReason']})", status=200)
            raise JudgeError("bad_response", "Gemini reply without candidates", status=200)
        cand = cands[0] if isinstance(cands[0], dict) else {}
        parts = (cand.get("content") or {}).get("parts") if isinstance(cand.get("content"), dict) else None
        text = "".join(
            p["text"]
            for p in parts or []
            if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
        )
        if not text.strip():
            raise JudgeError(
                "empty_response", f"no text parts (finishReason={cand.get('finishReason')})", status=200
            )
        usage = data.get("usageMetadata") if isinstance(data.get("usageMetadata"), dict) else {}
        out = _int_or_none(usage.get("candidatesTokenCount"))
        thoughts = _int_or_none(usage.get("thoughtsTokenCount")) or 0
        return Reply(
            text,
            _int_or_none(usage.get("promptTokenCount")),
            None if out is None else out + thoughts,
            finish_reason=cand.get("finishReason"),
        )


@dataclass
class OpenAIJudge(Judge):
    """Any server speaking OpenAI's chat-completions format (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    provider: ClassVar[str] = "openai"
    json_mode: bool = False

    def default_price(self):
        return _price_for(self.model)

    def build_request(self, system, user, key):
        headers = {"content-type": "application/json"}
        if key is not None:
            headers["authorization"] = f"Bearer {key.reveal()}"
        body = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        body.update(self.extra_body)
        base = self.base_url
        url = f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"
        return url, headers, body

    def parse_response(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise JudgeError("bad_response", "chat-completions reply without choices", status=200)
        choice = data["choices"][0] if isinstance(data["choices"][0], dict) else {}
        msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content = msg.get("content")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise JudgeError(
                "empty_response",
                f"no message content (finish_reason={choice.get('finish_reason')})",
                status=200,
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Reply(
            content,
            _int_or_none(usage.get("prompt_tokens")),
            _int_or_none(usage.get("completion_tokens")),
            finish_reason=choice.get("finish_reason"),
        )


# ---- constructors used by the course ---------------------------------------------------------


def claude(
    model: str = "claude-haiku-4-5",
    *,
    name: str = "claude",
    base_url: str = ANTHROPIC_BASE_URL,
    api_key: str | Secret | None = None,
    **kw,
) -> AnthropicJudge:
    """A Claude judge; the key comes from ``ANTHROPIC_API_KEY`` (environment or Colab secret)."""
    return AnthropicJudge(
        name=name,
        model=model,
        base_url=base_url,
        api_key=api_key,
        api_key_env=kw.pop("api_key_env", ("ANTHROPIC_API_KEY",)),
        **kw,
    )


def gemini(
    model: str = "gemini-2.5-flash",
    *,
    name: str = "gemini",
    base_url: str = GEMINI_BASE_URL,
    api_key: str | Secret | None = None,
    **kw,
) -> GeminiJudge:
    """A Gemini judge; the key comes from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``.

    For the 2.5 Flash family the default turns thinking off (``thinkingBudget: 0``): thinking tokens
    count against ``maxOutputTokens`` and are billed as output, and a rubric score does not need them."""
    extra = dict(kw.pop("extra_body", {}))
    if model.removeprefix("models/").startswith("gemini-2.5-flash"):
        gen = dict(extra.get("generationConfig", {}))
        gen.setdefault("thinkingConfig", {"thinkingBudget": 0})
        extra["generationConfig"] = gen
    return GeminiJudge(
        name=name,
        model=model,
        base_url=base_url,
        api_key=api_key,
        extra_body=extra,
        api_key_env=kw.pop("api_key_env", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
        **kw,
    )


def openai_compatible(
    base_url: str,
    model: str,
    *,
    name: str = "openai",
    api_key: str | Secret | None = None,
    api_key_env: tuple[str, ...] | None = None,
    require_key: bool | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
    **kw,
) -> OpenAIJudge:
    """A judge behind any OpenAI-compatible server, e.g. ``openai_compatible("http://localhost:8000",
    "Qwen/Qwen2.5-7B-Instruct", name="local")`` for ``vllm serve``. A local server costs nothing by
    default (prices 0) and needs no key unless it was started with ``--api-key`` (pass ``api_key=`` or
    ``api_key_env=``). ``OPENAI_API_KEY`` is read only when ``base_url`` is OpenAI's own, so your
    OpenAI key is never sent to some other server."""
    is_openai = base_url.rstrip("/").startswith(OPENAI_BASE_URL)
    if api_key_env is None:
        api_key_env = ("OPENAI_API_KEY",) if is_openai else ()
    if require_key is None:
        require_key = is_openai
    if price_in is None and price_out is None and _price_for(model) is None and not is_openai:
        price_in = price_out = 0.0
    return OpenAIJudge(
        name=name,
        model=model,
        base_url=base_url,
        api_key=api_key,
        api_key_env=api_key_env,
        require_key=require_key,
        price_in=price_in,
        price_out=price_out,
        **kw,
    )
