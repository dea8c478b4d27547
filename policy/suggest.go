package policy

import "strings"

// suggest returns the element of known closest to s, for "did you
// mean" hints, or "" when none is close. Case is ignored. A known name
// that s abbreviates or extends ranks first, then the fewest edits
// (transposed letters count as one); names sharing a long prefix with s
// also count as close.
func suggest(s string, known []string) string {
	ls := strings.ToLower(s)
	best, bestClass, bestDist := "", 0, 0
	for _, k := range known {
		lk := strings.ToLower(k)
		dist := editDistance(ls, lk)
		class := 2
		switch {
		case ls == lk:
			class = 0
		case len(ls) >= 4 && len(lk) >= 4 && (strings.HasPrefix(lk, ls) || strings.HasPrefix(ls, lk)):
			class = 1
		case dist <= 1+len(lk)/5:
		case commonPrefix(ls, lk) >= max(4, (2*len(lk)+2)/3):
		default:
			continue
		}
		if best == "" || class < bestClass || class == bestClass && dist < bestDist {
			best, bestClass, bestDist = k, class, dist
		}
	}
	return best
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// bytes each cost one.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Names are short; do not spend quadratic time on long input.
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
