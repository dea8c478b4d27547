package policy

import (
	"fmt"
	"sort"
)

// rulePattern is one compiled image pattern of a rule.
type rulePattern struct {
	pattern
	rule *Rule
	line int // where the pattern is written, for messages
	path string
}

// sortPatterns orders patterns most specific first, keeping file order
// among equals.
func sortPatterns(ps []rulePattern) {
	sort.SliceStable(ps, func(i, j int) bool {
		return ps[i].spec.moreSpecific(ps[j].spec)
	})
}

// Match returns the rule governing image, a normalised
// "<registry>/<repository>" name (see [NormalizeImage]).
//
// Every pattern of every rule is tried (see the package documentation
// for the pattern syntax) and the most specific matching pattern wins:
// the one with the most literal characters ("/" included), then the one
// with fewer "**" segments, then the one with fewer "*". An exact
// pattern therefore beats any wildcard pattern matching the same name.
// [Parse] rejects configurations in which two rules could tie, so the
// result is deterministic.
//
// Match returns an error wrapping [ErrNoRule] when no rule matches (the
// caller then applies [Config.Unmatched]), and an error wrapping
// [ErrInvalidImage] when image is not a normalised name. Any error other
// than ErrNoRule must be treated as a denial. Match is safe for
// concurrent use and does not allocate unless it fails; a nil or zero
// Config matches nothing.
func (c *Config) Match(image string) (*Rule, error) {
	if err := checkImage(image); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w %s", ErrNoRule, image)
	}
	var best *rulePattern
	for i := range c.patterns {
		p := &c.patterns[i]
		if best != nil && p.spec != best.spec {
			break // sorted: everything after is less specific
		}
		if !p.match(image) {
			continue
		}
		if best == nil {
			best = p
			continue
		}
		if p.rule != best.rule {
			// Parse rejects such configurations; fail closed regardless.
			return nil, fmt.Errorf("image %s: policies %q and %q match with equal specificity (%q, %q)",
				image, best.rule.Name, p.rule.Name, best.text, p.text)
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w %s", ErrNoRule, image)
	}
	return best.rule, nil
}

// Upstream returns the upstream configured for registry, which is
// normalised with [NormalizeRegistry] first, or nil when there is none.
// A nil Config has no upstreams.
func (c *Config) Upstream(registry string) *Upstream {
	if c == nil {
		return nil
	}
	r := NormalizeRegistry(registry)
	for _, u := range c.Upstreams {
		if u.Registry == r {
			return u
		}
	}
	return nil
}
