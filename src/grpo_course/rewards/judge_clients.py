"""LLM judges through the providers' official SDKs: ``anthropic`` (Claude), ``google-genai`` (Gemini) and
``openai`` (OpenAI itself, or any OpenAI-compatible server: a local vLLM, llama.cpp, Ollama ...).

A judge turns one (system, user) prompt into the judge's reply text plus token counts. The SDK builds the
request, sends it, times it out and retries it; this module adds what the course needs on top: prices,
API-key hygiene, and one retry policy (:class:`RetryPolicy`) set through each SDK's own settings.

What each failure does (A+O: the Anthropic and OpenAI SDKs; G: google-genai):

- 5xx (Anthropic's 529), 408, a timeout: retried ``max_retries`` times, each attempt limited to ``timeout``
  (A+O: ``max_retries``, ``timeout``; G: ``HttpRetryOptions.attempts``, ``HttpOptions.timeout``).
- A dropped connection: A+O retry it; G does not (``connection`` at once).
- A 429 rate limit: A+O wait what ``Retry-After`` asks; G backs off ``base_delay`` doubling to
  ``max_delay``, because google-genai reads neither ``Retry-After`` nor Gemini's RetryInfo.
- A 429 whose ``Retry-After`` (or RetryInfo) exceeds ``max_retry_after``: fails at once
  (``retry_after_too_long``).
- A 429 that waiting cannot fix (a spend cap, no credit left, a per-day quota): fails at once (``quota``).
- 400, 401, 403, 404: fail at once (``http_401`` ...).
- HTML or a wrong envelope in a 200: fails at once (``bad_response``; a blocked Gemini prompt: ``blocked``).
  A reply whose *text* is not valid score JSON is the reward's business (:mod:`.judges`): an unscored
  verdict, never 0.

Read from the pinned SDKs' source (the versions in requirements.txt): ``anthropic/_base_client.py`` and
``openai/_base_client.py`` (``_should_retry``: 408, 409, 429 and >= 500 are retried unless the response says
``x-should-retry: false``; ``_calculate_retry_timeout``: ``Retry-After``/``retry-after-ms`` is honoured, by
Anthropic's SDK without an upper bound, by OpenAI's up to 120 s, else 0.5 s doubling to 8 s with jitter) and
``google/genai/_api_client.py`` (``retry_args``: no retry at all without ``retry_options``; with them
``APIError`` codes 408, 429, 500, 502, 503, 504 and ``httpx`` timeouts/connect errors, waiting
``initial_delay * 2**n + uniform(0, jitter)`` capped at ``max_delay``; it uses aiohttp when installed unless
it is given an ``httpx`` client, which is why :class:`JudgeSession` gives it one).

The last two 429 rows are the course's own policy, which no SDK has: the Stainless SDKs (Anthropic, OpenAI)
retry every 429, an exhausted OpenAI balance included (``insufficient_quota`` is a 429, and openai-python
retries it: github.com/langchain-ai/langchainjs/issues/1929, github.com/techwithtim/PythonAgentAI/issues/5;
openai/codex#6340 made the Codex CLI stop retrying it). So every judge's HTTP client carries one response
hook (:func:`final_reason`): such a 429 gets ``x-should-retry: false``, the switch both Stainless SDKs obey,
and for google-genai, which has no such switch, the hook raises (its retry retries only ``APIError``). A hook
on requests counts the attempts of each call.

API keys come from the environment or, on Colab, from ``google.colab.userdata`` (imported lazily). They live
in :class:`Secret` objects whose ``repr`` is masked, are handed only to the SDK client, and are scrubbed from
every error message; errors are raised ``from None`` so no SDK exception (whose request holds the key) hangs
off a traceback. The SDKs are imported only when a judge is called, so ``import grpo_course`` stays light.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

logger = logging.getLogger("grpo_course.rewards.judges")

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


class Secret:
    """An API key that does not show itself: ``repr``/``str`` are masked; ``reveal()`` is for the SDK only."""

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

    def __init__(self, category: str, message: str, status: int | None = None):
        super().__init__(f"{category}: {message}")
        self.category = category
        self.message = message
        self.status = status
        self.attempts = 0


@dataclass
class RetryPolicy:
    """How hard a judge tries, handed to each SDK's own settings.

    ``max_retries``: retries after the first attempt (Anthropic/OpenAI ``max_retries``; google-genai
    ``HttpRetryOptions.attempts = max_retries + 1``). ``base_delay`` / ``max_delay``: google-genai's backoff
    (``initial_delay``, ``max_delay``, jitter up to ``base_delay``); the Anthropic and OpenAI SDKs use their
    own fixed schedule (0.5 s doubling to 8 s) or the server's ``Retry-After``. ``max_retry_after``: a 429
    asking to wait longer fails at once (a training step should not sleep for an hour)."""

    max_retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def __post_init__(self):
        if self.max_retries < 0 or not (0 < self.base_delay <= self.max_delay) or self.max_retry_after < 0:
            raise ValueError("need max_retries >= 0, 0 < base_delay <= max_delay and max_retry_after >= 0")


def parse_retry_after(headers: Any, body: Any = None, now: float | None = None) -> float | None:
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


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def final_reason(status: int, headers: Any, text: str, policy: RetryPolicy) -> str | None:
    """``"quota"`` or ``"retry_after_too_long"`` for a 429 that waiting cannot fix; else None."""
    if status != 429:
        return None
    if any(m in text.lower() for m in _NON_RETRYABLE_429_MARKERS):
        return "quota"
    wait = parse_retry_after(headers, _json_or_none(text))
    return "retry_after_too_long" if wait is not None and wait > policy.max_retry_after else None


class _FinalResponse(Exception):
    """Raised by the response hook for google-genai, whose retry has no ``x-should-retry`` switch."""

    def __init__(self, response: Any):
        super().__init__(f"HTTP {response.status_code} that waiting cannot fix")
        self.response = response


_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("judge_attempts", default=None)


def _hooks(policy: RetryPolicy, *, raise_final: bool) -> dict[str, list]:
    """httpx event hooks: count each call's attempts; stop the SDK's retry on a final 429 (module doc)."""

    async def count(request) -> None:
        counter = _ATTEMPTS.get()
        if counter is not None:
            counter[0] += 1

    async def stop_final(response) -> None:
        if response.status_code != 429:
            return
        await response.aread()
        if final_reason(response.status_code, response.headers, response.text, policy):
            if raise_final:
                raise _FinalResponse(response)
            response.headers["x-should-retry"] = "false"

    return {"request": [count], "response": [stop_final]}


_SSL_CONTEXT = None


def ssl_context():
    """One SSL context per process: building one loads the CA bundle (~80 ms), too slow per step."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import httpx  # noqa: PLC0415

        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


def is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit  # noqa: PLC0415

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


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


def _tokens(usage: Any, name: str) -> int | None:
    """A token count from an SDK usage object, or None when the server did not report it."""
    v = getattr(usage, name, None)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


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


class JudgeSession:
    """The SDK clients of one batch, one per judge, made on first use inside the running event loop (an
    async client belongs to its loop) and closed with the session. ``trust_env`` None honours proxy
    variables (HTTPS_PROXY & co.) for a remote API, never for a server on this machine."""

    def __init__(self, trust_env: bool | None = None, max_connections: int = 8):
        self.trust_env = trust_env
        self.max_connections = max_connections
        self._clients: dict[int, tuple[Any, Any]] = {}

    def client(self, judge: Judge) -> Any:
        """The judge's SDK client."""
        return self._made(judge)[0]

    def http(self, judge: Judge) -> Any:
        """The HTTP client under the judge's SDK client."""
        return self._made(judge)[1]

    def _made(self, judge: Judge) -> tuple[Any, Any]:
        if id(judge) not in self._clients:
            trust_env = not is_loopback(judge.base_url) if self.trust_env is None else self.trust_env
            self._clients[id(judge)] = judge.make_client(trust_env, self.max_connections)
        return self._clients[id(judge)]

    async def __aenter__(self) -> JudgeSession:
        return self

    async def __aexit__(self, *exc) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for _sdk, http in clients:
            with contextlib.suppress(Exception):
                await http.aclose()


@dataclass
class Judge:
    """One LLM judge: which API, which model, its key, prices, limits. Subclasses call each SDK.

    ``name`` identifies the judge in metrics and in the cache key. ``price_in`` / ``price_out`` are USD
    per million tokens; left as None they come from :data:`PRICES_USD_PER_MTOK` (or the conservative
    fallback for an unknown model, with a warning). ``timeout`` is seconds per attempt. ``max_concurrency``
    caps this judge's calls in flight on top of the reward's global cap. ``extra_body``: extra request
    fields, passed through the SDK's own ``extra_body``."""

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
            price = _price_for(self.model)
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

    # ---- the SDK (subclasses) -------------------------------------------------------------------
    def make_client(self, trust_env: bool, max_connections: int) -> tuple[Any, Any]:
        """(the SDK's async client, the HTTP client under it: :func:`_http_client`)."""
        raise NotImplementedError

    async def ask(self, client: Any, system: str, user: str) -> Any:
        """One SDK call (the SDK retries inside it); returns the SDK's reply object."""
        raise NotImplementedError

    def read(self, resp: Any) -> Reply:
        """The text and token counts of an SDK reply; JudgeError when it holds no text. A reply without the
        fields the SDK's types promise (a wrong envelope) raises AttributeError, TypeError or IndexError."""
        raise NotImplementedError

    def sdk_errors(self) -> dict[str, tuple[type[BaseException], ...]]:
        """The SDK's exception classes by meaning: ``status`` (an HTTP error reply, with ``.response``),
        ``timeout``, ``connection`` (checked after ``timeout``) and ``bad_response`` (an unreadable 200)."""
        raise NotImplementedError

    # ---- the call -----------------------------------------------------------------------------
    async def complete(
        self, system: str, user: str, *, session: JudgeSession | None = None, slots: Any = None
    ) -> Reply:
        """Send one prompt through the SDK (which retries); return the reply or raise :class:`JudgeError`.
        ``session`` holds the batch's clients (a private one when None); ``slots`` is held during the call."""
        key = self.key()
        if key is None and self.require_key:
            names = " or ".join(self.api_key_env) or "an api_key"
            raise JudgeError(
                "no_api_key",
                f"judge {self.name!r} has no API key: set {names} in the "
                "environment (or as a Colab secret), or pass api_key=",
            )
        secrets = [key.reveal()] if key is not None else []
        attempts = [0]
        token = _ATTEMPTS.set(attempts)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if session is None:
                    session = await stack.enter_async_context(JudgeSession())
                if slots is not None:
                    await stack.enter_async_context(slots)
                resp = await self.ask(session.client(self), system, user)
            try:
                reply = self.read(resp)
            except (AttributeError, TypeError, IndexError) as exc:  # HTML or a wrong envelope in a 200
                what = f"reply without the expected fields ({type(exc).__name__})"
                raise JudgeError("bad_response", what, 200) from None
            reply.attempts = attempts[0]
            return reply
        except Exception as exc:  # every SDK error becomes a JudgeError without the key
            err = self._judge_error(exc, secrets)
            err.attempts = attempts[0]
        finally:
            _ATTEMPTS.reset(token)
        raise err from None

    def _judge_error(self, exc: Exception, secrets: list[str]) -> JudgeError:
        if isinstance(exc, JudgeError):
            exc.message = redact(exc.message, secrets)
            exc.args = (redact(str(exc.args[0]), secrets),)
            return exc
        kinds = self.sdk_errors()
        if isinstance(exc, (_FinalResponse, *kinds["status"])):
            response = exc.response
            status, text = response.status_code, response.text
            detail = redact(_error_message(_json_or_none(text), text), secrets)[:300]
            reason = final_reason(status, response.headers, text, self.retry)
            if reason == "quota":
                return JudgeError(
                    "quota", f"HTTP 429 spending/quota limit (not retried): {detail}", status=status
                )
            if reason == "retry_after_too_long":
                wait = parse_retry_after(response.headers, _json_or_none(text))
                limit = self.retry.max_retry_after
                return JudgeError(
                    reason, f"server asked to wait {wait:.0f} s (> max_retry_after={limit:.0f} s)"
                )
            return JudgeError(f"http_{status}", detail or f"HTTP {status}", status=status)
        name = type(exc.__cause__ or exc).__name__
        if isinstance(exc, kinds["timeout"]):  # before "connection": the Stainless timeout error is one
            return JudgeError("timeout", f"no reply within {self.timeout:g} s ({name})")
        if isinstance(exc, kinds["connection"]):
            return JudgeError("connection", name)
        if isinstance(exc, kinds["bad_response"]):
            return JudgeError("bad_response", f"unreadable reply ({name})", status=200)
        raise exc  # a bug, not a judge failure: JudgeReward records it as 'internal'


def _http_client(http: Any, judge: Judge, trust_env: bool, max_connections: int, *, raise_final: bool) -> Any:
    """An async client of ``http`` (``httpx``, or ``httpx2`` for anthropic >= 2) carrying :func:`_hooks`."""
    return http.AsyncClient(
        limits=http.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        trust_env=trust_env,
        verify=ssl_context(),
        follow_redirects=False,  # a redirect must not carry the key to another host
        event_hooks=_hooks(judge.retry, raise_final=raise_final),
    )


def _stainless_errors(sdk: Any) -> dict[str, tuple[type[BaseException], ...]]:
    """The Anthropic and OpenAI SDKs' errors (both are generated by Stainless and share their names)."""
    return {
        "status": (sdk.APIStatusError,),
        "timeout": (sdk.APITimeoutError,),
        "connection": (sdk.APIConnectionError,),
        "bad_response": (sdk.APIResponseValidationError, ValueError),
    }


@dataclass
class AnthropicJudge(Judge):
    """Claude through the ``anthropic`` SDK's Messages API (``AsyncAnthropic().messages.create``).

    ``temperature`` is not sent: API version 2026-10-21, which anthropic >= 2.0 sends, rejects
    ``temperature``/``top_p``/``top_k`` with a 400 even at their defaults, and the SDK no longer has them
    (its ``messages.create`` signature; the version's migration notes, e.g.
    https://codersera.com/blog/anthropic-api-2026-10-21-sdk-migration-guide-2026/). So Claude grades at the
    model's own sampling and may score one answer differently twice; the cache keeps its first verdict."""

    provider: ClassVar[str] = "anthropic"

    def make_client(self, trust_env, max_connections):
        import anthropic  # noqa: PLC0415 - only when a judge is called
        import httpx2  # noqa: PLC0415 - the HTTP library of anthropic >= 2 (it refuses httpx clients)

        http = _http_client(httpx2, self, trust_env, max_connections, raise_final=False)
        key = self.key()
        client = anthropic.AsyncAnthropic(
            api_key=key.reveal() if key is not None else "",
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.retry.max_retries,
            http_client=http,
        )
        return client, http

    async def ask(self, client, system, user):
        return await client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=system,
            messages=[{"role": "user", "content": user}],
            extra_body=self.extra_body or None,
        )

    def read(self, msg):
        text = "".join(b.text for b in msg.content if b.type == "text")
        if not text.strip():
            raise JudgeError("empty_response", f"no text blocks (stop_reason={msg.stop_reason})", status=200)
        usage = getattr(msg, "usage", None)
        return Reply(
            text, _tokens(usage, "input_tokens"), _tokens(usage, "output_tokens"), 1, msg.stop_reason
        )

    def sdk_errors(self):
        import anthropic  # noqa: PLC0415

        return _stainless_errors(anthropic)


@dataclass
class GeminiJudge(Judge):
    """Gemini through the ``google-genai`` SDK (``Client().aio.models.generate_content``, API-key auth).

    ``thinking_budget``: tokens Gemini may think before answering (None: the model's default); thinking
    tokens count against ``max_tokens`` and are billed as output."""

    provider: ClassVar[str] = "gemini"
    thinking_budget: int | None = None

    def make_client(self, trust_env, max_connections):
        import httpx  # noqa: PLC0415
        from google import genai  # noqa: PLC0415 - only when a judge is called
        from google.genai import types  # noqa: PLC0415

        http = _http_client(httpx, self, trust_env, max_connections, raise_final=True)
        r = self.retry
        options = types.HttpOptions(
            base_url=self.base_url,
            timeout=max(1, round(self.timeout * 1000)),  # milliseconds
            extra_body=self.extra_body or None,
            httpx_async_client=http,  # httpx, not aiohttp: the retry below knows httpx's timeouts
            # the process's SSL context: without one the SDK loads the CA bundle twice per client (~90 ms
            # a batch; google/genai/_api_client.py, _ensure_httpx_ssl_ctx and _ensure_websocket_ssl_ctx)
            client_args={"verify": ssl_context()},
            async_client_args={"verify": ssl_context(), "ssl": ssl_context()},
            retry_options=types.HttpRetryOptions(
                attempts=r.max_retries + 1,  # 0 or 1: no retry
                initial_delay=r.base_delay,
                max_delay=r.max_delay,
                jitter=r.base_delay,  # the wait is initial_delay * 2**n + uniform(0, jitter)
            ),
        )
        key = self.key()
        client = genai.Client(api_key=key.reveal() if key else "", vertexai=False, http_options=options)
        return client, http

    async def ask(self, client, system, user):
        from google.genai import types  # noqa: PLC0415

        thinking = (
            None
            if self.thinking_budget is None
            else types.ThinkingConfig(thinking_budget=self.thinking_budget)
        )
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=self.temperature,
            max_output_tokens=self.max_tokens,
            response_mime_type="application/json",
            thinking_config=thinking,
        )
        model = self.model.removeprefix("models/")
        return await client.aio.models.generate_content(model=model, contents=user, config=config)

    def read(self, resp):
        if not resp.candidates:
            block = getattr(resp.prompt_feedback, "block_reason", None)
            if block:
                raise JudgeError("blocked", f"prompt blocked ({getattr(block, 'value', block)})", status=200)
            raise JudgeError("bad_response", "Gemini reply without candidates", status=200)
        finish = getattr(resp.candidates[0].finish_reason, "value", resp.candidates[0].finish_reason)
        text = resp.text  # the text parts of the first candidate, thoughts left out
        if not text or not text.strip():
            raise JudgeError("empty_response", f"no text parts (finishReason={finish})", status=200)
        usage = resp.usage_metadata
        out, thoughts = _tokens(usage, "candidates_token_count"), _tokens(usage, "thoughts_token_count") or 0
        return Reply(
            text, _tokens(usage, "prompt_token_count"), None if out is None else out + thoughts, 1, finish
        )

    def sdk_errors(self):
        import httpx  # noqa: PLC0415
        from google.genai import errors  # noqa: PLC0415

        return {
            "status": (errors.APIError,),  # its .response is the httpx response (JudgeSession gives httpx)
            "timeout": (httpx.TimeoutException,),
            "connection": (httpx.TransportError,),  # a dropped connection: google-genai does not retry it
            "bad_response": (ValueError,),  # a 200 whose body is not JSON
        }


@dataclass
class OpenAIJudge(Judge):
    """Any server speaking OpenAI's chat-completions format (OpenAI, vLLM, llama.cpp, Ollama, ...) through
    the ``openai`` SDK (``AsyncOpenAI().chat.completions.create``)."""

    provider: ClassVar[str] = "openai"
    json_mode: bool = False

    def make_client(self, trust_env, max_connections):
        import httpx  # noqa: PLC0415
        import openai  # noqa: PLC0415 - only when a judge is called

        http = _http_client(httpx, self, trust_env, max_connections, raise_final=False)
        key = self.key()
        client = openai.AsyncOpenAI(
            # a local server started without --api-key takes any key; "EMPTY" is vLLM's documented
            # placeholder, and passing one keeps the SDK from reading OPENAI_API_KEY for another server
            api_key=key.reveal() if key is not None else "EMPTY",
            base_url=self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1",
            timeout=self.timeout,
            max_retries=self.retry.max_retries,
            http_client=http,
        )
        return client, http

    async def ask(self, client, system, user):
        return await client.chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format={"type": "json_object"} if self.json_mode else None,
            extra_body=self.extra_body or None,
        )

    def read(self, resp):
        choice = resp.choices[0]
        content = choice.message.content
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise JudgeError(
                "empty_response", f"no message content (finish_reason={choice.finish_reason})", status=200
            )
        usage = getattr(resp, "usage", None)
        return Reply(
            content,
            _tokens(usage, "prompt_tokens"),
            _tokens(usage, "completion_tokens"),
            1,
            choice.finish_reason,
        )

    def sdk_errors(self):
        import openai  # noqa: PLC0415

        return _stainless_errors(openai)


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

    For the 2.5 Flash family the default turns thinking off (``thinking_budget=0``): thinking tokens
    count against ``max_tokens`` and are billed as output, and a rubric score does not need them."""
    if "thinking_budget" not in kw and model.removeprefix("models/").startswith("gemini-2.5-flash"):
        kw["thinking_budget"] = 0
    return GeminiJudge(
        name=name,
        model=model,
        base_url=base_url,
        api_key=api_key,
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
