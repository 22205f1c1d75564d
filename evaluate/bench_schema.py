"""One JSON schema for every latency result, whatever produced it (host runners,
the Android app's benchmark mode, macOS Core ML)."""
from pydantic import BaseModel, ConfigDict


class BenchResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    model_sha256: str = ""
    runtime: str
    runtime_version: str = ""
    device: str = ""
    os: str = ""
    cpu: str = ""
    threads: int
    batch: int = 1
    options: dict = {}
    init_ms: float
    first_ms: float
    warmup: int
    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    rss_delta_mb: float | None = None  # resident memory added by load + first inference
    macs: int | None = None
    achieved_gflops: float | None = None
    compute_bound_ms: float | None = None   # all mult-adds at the host's matmul peak
    compute_bound_ratio: float | None = None
    roofline_bound_ms: float | None = None  # per layer max(compute at peak, traffic at copy bandwidth)
    roofline_ratio: float | None = None
    samples_ms: list[float] = []  # every timed run, in order (for the latency distribution plot)
    notes: list[str] = []
    # `bench --device android --check`: the phone's outputs on golden inputs against this host's
    # LiteRT run of the same file: {"pass", "precision", "gate_variant", "outputs": {name: metrics}}
    parity: dict | None = None


def validate(results: list[dict]) -> list[BenchResult]:
    return [BenchResult.model_validate(r) for r in results]
