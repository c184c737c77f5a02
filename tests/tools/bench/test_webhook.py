"""The webhook benchmark's report (the timing itself is only measured by running the benchmark)."""

from tools.bench.webhook import Target, render


def test_the_report_gives_medians_p95s_and_both_ratios() -> None:
    webhook = Target("stripe_webhook", "http://127.0.0.1:1/", samples=[10.0 + i for i in range(20)])
    floor = Target("floor", "http://127.0.0.1:2/", samples=[10.0 + i / 2 for i in range(20)])

    report = render(webhook, floor)

    assert webhook.summary() == {"name": "stripe_webhook", "samples": 20, "median_ms": 19.5, "p95_ms": 28.0}
    assert floor.summary()["p95_ms"] == 19.0
    assert "p95 1.47x (ABOVE the 1.25x target)" in report
    assert "median 1.32x" in report


def test_a_ratio_at_or_below_the_target_is_reported_within() -> None:
    same = [12.0, 14.0, 16.0]
    report = render(Target("stripe_webhook", "u", samples=list(same)),
                    Target("floor", "v", samples=list(same)))
    assert "p95 1.00x (within the 1.25x target)" in report
