"""The engine's Prometheus metrics, in a registry of their own (one per engine, so tests and the demo
can run several): requests running and waiting, time to first token, inter-token latency, queue and
end-to-end time, token counters and rejections. Names follow vLLM's, under `roost_`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    40.0,
)
_ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
_REQUEST_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("roost_requests_running", "Requests in the running batch.", registry=r)
        self.waiting = Gauge("roost_requests_waiting", "Requests queued for a KV-cache slot.", registry=r)
        self.ttft = Histogram(
            "roost_time_to_first_token_seconds", "Arrival to first token.", buckets=_TTFT_BUCKETS, registry=r
        )
        self.itl = Histogram(
            "roost_inter_token_latency_seconds",
            "Between consecutive tokens.",
            buckets=_ITL_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "roost_e2e_request_latency_seconds",
            "Arrival to last token.",
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "roost_request_queue_time_seconds", "Arrival to prefill.", buckets=_REQUEST_BUCKETS, registry=r
        )
        self.prompt_tokens = Counter("roost_prompt_tokens", "Prompt tokens prefilled.", registry=r)
        self.generation_tokens = Counter("roost_generation_tokens", "Tokens generated.", registry=r)
        self.finished = Counter(
            "roost_requests_finished", "Requests finished, by reason.", ["finish_reason"], registry=r
        )
        self.rejected = Counter(
            "roost_requests_rejected", "Requests refused with 429 (queue full).", registry=r
        )
