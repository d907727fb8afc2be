package compare

import (
	"math"
	"testing"
	"time"
)

// TestRatioInterval: block pairs with a steady 3x ratio give a tight
// interval around 3; noisy pairs give a wide one; one pair gives none.
func TestRatioInterval(t *testing.T) {
	pairs := func(ratios ...float64) [2][]sample { // [den, num]
		var s [2][]sample
		for _, r := range ratios {
			s[0] = append(s[0], sample{cpu: time.Millisecond, wall: time.Millisecond, ops: 1})
			s[1] = append(s[1], sample{cpu: time.Duration(r * float64(time.Millisecond)), wall: time.Duration(r * float64(time.Millisecond)), ops: 1})
		}
		return s
	}
	ratio := func(s [2][]sample, m Metric) (float64, float64, int) { return ratioInterval(s[1], s[0], m) }
	lo, hi, n := ratio(pairs(3, 3, 3, 3, 3, 3), MetricCPU)
	if n != 6 || math.Abs(lo-3) > 1e-9 || math.Abs(hi-3) > 1e-9 {
		t.Fatalf("steady: %v–%v (%d)", lo, hi, n)
	}
	lo, hi, _ = ratio(pairs(1.5, 4, 2, 5, 1.2, 3.5), MetricWall)
	if !(lo < 2 && hi > 3) {
		t.Fatalf("noisy pairs should span 2..3: %v–%v", lo, hi)
	}
	if lo, hi, n := ratio(pairs(3), MetricCPU); n != 1 || lo != 0 || hi != 0 {
		t.Fatalf("one pair: %v–%v, n=%d", lo, hi, n)
	}
	for _, tt := range []struct {
		row  Row
		want string
	}{
		{Row{Verdict: "pass"}, "✅"}, {Row{Verdict: "fail"}, "❌"}, {Row{Verdict: "inconclusive"}, "inconclusive"},
	} {
		if got := status(tt.row); got != tt.want {
			t.Errorf("status(%s) = %s", tt.row.Verdict, got)
		}
	}
}

// TestVerdict: a target to reach (driver/databridge ≥ 3x) and one to stay
// within (databridge/floor ≤ 1.1x), each met, missed and undecided.
func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		lo, hi, bound float64
		n             int
		atLeast       bool
		want          string
	}{
		{3.1, 3.5, 3, 10, true, "pass"},
		{2.0, 2.9, 3, 10, true, "fail"},
		{2.5, 3.5, 3, 10, true, "inconclusive"},
		{3.1, 3.5, 3, 1, true, "inconclusive"},
		{0.9, 1.05, 1.1, 10, false, "pass"},
		{1.2, 1.6, 1.1, 10, false, "fail"},
		{1.0, 1.3, 1.1, 10, false, "inconclusive"},
	} {
		if got := verdict(tt.lo, tt.hi, tt.n, tt.bound, tt.atLeast); got != tt.want {
			t.Errorf("verdict(%v–%v, n=%d, bound %v, atLeast %v) = %s, want %s", tt.lo, tt.hi, tt.n, tt.bound, tt.atLeast, got, tt.want)
		}
	}
}
