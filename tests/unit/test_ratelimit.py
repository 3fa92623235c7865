"""Token buckets driven by an injected clock (seconds as plain numbers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autosdlc_ws.core.ratelimit import KeyedBuckets, TokenBucket


def test_starts_full_and_allows_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3, updated_at=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(100.0) == 500  # one token at 2/s is 500 ms away


def test_retry_after_shrinks_as_time_passes() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3, updated_at=0.0)
    for _ in range(3):
        assert bucket.take(0.0) == 0
    assert bucket.take(0.25) == 250  # half a token refilled
    assert bucket.take(0.4) == 100
    assert bucket.take(0.5) == 0  # exactly one token
    assert bucket.take(0.5) == 500


def test_refill_is_capped_at_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, updated_at=0.0)
    for _ in range(5):
        bucket.take(0.0)
    # an hour idle refills to 5, not to 36,000
    assert [bucket.take(3600.0) for _ in range(6)] == [0, 0, 0, 0, 0, 100]


def test_sustained_rate_is_allowed() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=2, updated_at=0.0)
    # one message every 100 ms forever is exactly the rate (burst 2 absorbs float rounding)
    assert all(bucket.take(i * 0.1) == 0 for i in range(1, 1000))
    # faster than the rate is refused once the burst is spent
    assert [bucket.take(200.0) > 0 for _ in range(3)] == [False, False, True]


def test_cost_and_retry_after_for_a_bigger_cost() -> None:
    bucket = TokenBucket(rate_per_s=4, burst=4, updated_at=0.0)
    assert bucket.take(0.0, cost=3) == 0
    assert bucket.take(0.0, cost=3) == 500  # 1 left, 2 more needed at 4/s
    assert bucket.take(0.5, cost=3) == 0


def test_retry_after_is_at_least_one_ms() -> None:
    bucket = TokenBucket(rate_per_s=1000, burst=1, updated_at=0.0)
    assert bucket.take(0.0) == 0
    assert bucket.take(0.0009999) == 1


def test_zero_rate_never_refills() -> None:
    bucket = TokenBucket(rate_per_s=0, burst=2, updated_at=0.0)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(1e6) == 60_000


def test_clock_going_backwards_does_not_refill() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1, updated_at=10.0)
    assert bucket.take(10.0) == 0
    assert bucket.take(5.0) == 1000
    assert bucket.take(10.5) == 500


# ----------------------------------------------------------------------- KeyedBuckets


def test_keys_have_separate_buckets() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=2)
    assert buckets.take("a", 0.0) == 0 and buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 1000
    assert buckets.take("b", 0.0) == 0


def test_eviction_of_refilled_buckets_keeps_behaviour() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=2, max_keys=2)
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("b", 0.0) == 0
    # at t=10 both have refilled: forgetting them is invisible
    assert buckets.take("c", 10.0) == 0
    assert len(buckets._buckets) <= 2
    assert buckets.take("a", 10.0) == 0
    assert buckets.take("a", 10.0) == 0
    assert buckets.take("a", 10.0) == 1000


def test_eviction_never_forgets_a_depleted_bucket_while_a_fuller_one_exists() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=3, max_keys=2)
    for _ in range(3):
        buckets.take("abuser", 0.0)  # depleted, first in the table
    buckets.take("quiet", 0.0)  # 2 tokens left
    assert buckets.take("newcomer", 0.5) == 0  # table full, nothing refilled: one must go
    assert len(buckets._buckets) <= 2
    # the abuser is still limited: had it been forgotten it would get a full burst
    assert buckets.take("abuser", 0.5) == 500


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from("abcdef"), st.floats(0, 3, allow_nan=False)), max_size=80),
)
def test_bounded_table_behaves_like_an_unbounded_one_while_it_only_drops_full_buckets(
    ops: list[tuple[str, float]],
) -> None:
    """With a slow-enough stream the table only ever drops refilled buckets, so a
    table of 2 keys answers exactly like a table of unlimited size."""
    bounded = KeyedBuckets(rate_per_s=1, burst=2, max_keys=2)
    unbounded = KeyedBuckets(rate_per_s=1, burst=2)
    now = 0.0
    for key, step in ops:
        # each step is long enough for every bucket to refill but the newest two
        now += 2.0 + step
        assert bounded.take(key, now) == unbounded.take(key, now)
        assert bounded.take(key, now) == unbounded.take(key, now)
        assert len(bounded._buckets) <= 2
