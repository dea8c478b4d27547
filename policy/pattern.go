package policy

import (
	"errors"
	"fmt"
	"strings"
)

// The pattern syntax and the specificity order are documented in doc.go;
// keep the two in step.

// segKind is the kind of one token of a compiled pattern.
type segKind uint8

const (
	// segGlob matches one segment against glob, in which '*' matches any
	// run of characters.
	segGlob segKind = iota
	// segAny matches any one segment. It is the first half of "**".
	segAny
	// segAnyStar matches zero or more segments. It is the second half of
	// "**".
	segAnyStar
)

// seg is one token of a compiled pattern.
type seg struct {
	kind segKind
	glob string // for segGlob
}

// specificity orders patterns: the one with more literal characters
// wins, then the one with fewer "**", then the one with fewer "*".
type specificity struct {
	literals    int // characters other than '*', separators included
	doubleStars int // "**" segments
	stars       int // '*' within segments
}

// moreSpecific reports whether a wins over b.
func (a specificity) moreSpecific(b specificity) bool {
	if a.literals != b.literals {
		return a.literals > b.literals
	}
	if a.doubleStars != b.doubleStars {
		return a.doubleStars < b.doubleStars
	}
	return a.stars < b.stars
}

// pattern is a compiled image pattern.
type pattern struct {
	text string // normalised
	segs []seg
	spec specificity
}

// compilePattern normalises and compiles an image pattern.
func compilePattern(s string) (pattern, error) {
	if s == "**" {
		return pattern{
			text: s,
			segs: []seg{{kind: segAny}, {kind: segAnyStar}},
			spec: specificity{doubleStars: 1},
		}, nil
	}
	if s == "" {
		return pattern{}, errors.New("empty image pattern")
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 {
		return pattern{}, fmt.Errorf(`image pattern %q names no registry: write "<registry>/<repository>", e.g. "docker.io/%s"`, s, s)
	}
	if strings.Contains(parts[0], "**") {
		return pattern{}, fmt.Errorf(`image pattern %q: "**" cannot stand for the registry: use "*" within the registry, or the bare pattern "**" for every image`, s)
	}
	parts[0] = NormalizeRegistry(parts[0])
	if err := checkPatternRegistry(parts[0]); err != nil {
		return pattern{}, fmt.Errorf("image pattern %q: %w", s, err)
	}
	for _, p := range parts[1:] {
		if err := checkPatternSegment(p); err != nil {
			return pattern{}, fmt.Errorf("image pattern %q: %w", s, err)
		}
	}
	if parts[0] == dockerHub && len(parts) == 2 && parts[1] != "**" {
		parts = []string{dockerHub, "library", parts[1]}
	}
	p := pattern{text: strings.Join(parts, "/")}
	for _, part := range parts {
		if part == "**" {
			p.segs = append(p.segs, seg{kind: segAny}, seg{kind: segAnyStar})
			p.spec.doubleStars++
			continue
		}
		p.segs = append(p.segs, seg{kind: segGlob, glob: part})
		n := strings.Count(part, "*")
		p.spec.stars += n
		p.spec.literals += len(part) - n
	}
	p.spec.literals += len(parts) - 1 // the separators
	return p, nil
}

// checkPatternRegistry validates the registry segment of a pattern,
// already normalised: a registry name in which '*' may appear.
func checkPatternRegistry(r string) error {
	if strings.Contains(r, "**") {
		return errors.New(`"**" must be a whole segment`)
	}
	if err := checkRegistryName(r, true); err != nil {
		return fmt.Errorf("registry %q: %w", r, err)
	}
	return nil
}

// checkRegistryName validates a normalised registry name: host[:port],
// where host is a DNS name or an IPv6 address in brackets. With
// wildcard, '*' may also appear in host and port. It does not allocate
// unless it fails.
func checkRegistryName(r string, wildcard bool) error {
	var host, port string
	var hasPort bool
	if strings.HasPrefix(r, "[") {
		end := strings.IndexByte(r, ']')
		if end < 0 {
			return errors.New("unterminated IPv6 address")
		}
		host = r[1:end]
		switch rest := r[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return errors.New("unexpected characters after IPv6 address")
		}
		if host == "" {
			return errors.New("empty IPv6 address")
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || wildcard && c == '*') {
				return fmt.Errorf("character %q is not allowed in an IPv6 address", c)
			}
		}
	} else {
		host, port, hasPort = strings.Cut(r, ":")
		if host == "" {
			return errors.New("empty registry host")
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isNameChar(c) && !(wildcard && c == '*') {
				return fmt.Errorf("character %q is not allowed", c)
			}
		}
	}
	if hasPort && port == "" {
		return errors.New("empty port")
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; (c < '0' || c > '9') && !(wildcard && c == '*') {
			return fmt.Errorf("port character %q is not allowed", c)
		}
	}
	return nil
}

// checkPatternSegment validates a repository segment of a pattern.
func checkPatternSegment(p string) error {
	if p == "" {
		return errors.New("empty path segment")
	}
	if p == "**" {
		return nil
	}
	if strings.Contains(p, "**") {
		return fmt.Errorf(`segment %q: "**" must be a whole segment`, p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case isNameChar(c) || c == '*':
		case c >= 'A' && c <= 'Z':
			return fmt.Errorf("segment %q: repository names are lower-case", p)
		case c == ':' || c == '@':
			return fmt.Errorf("segment %q: patterns name repositories, not tags or digests", p)
		default:
			return fmt.Errorf("segment %q: character %q is not allowed", p, c)
		}
	}
	return nil
}

// isNameChar reports whether c may appear in a registry host or a
// repository segment.
func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// checkImage reports whether name is a normalised "<registry>/<repository>"
// that [Config.Match] can decide. It does not allocate unless it fails.
func checkImage(name string) error {
	slash := strings.IndexByte(name, '/')
	if slash < 0 {
		return fmt.Errorf("%w %q: want <registry>/<repository>", ErrInvalidImage, name)
	}
	reg, repo := name[:slash], name[slash+1:]
	if checkRegistryName(reg, false) != nil {
		return fmt.Errorf("%w %q: bad registry", ErrInvalidImage, name)
	}
	if reg != NormalizeRegistry(reg) {
		return fmt.Errorf("%w %q: registry not normalised", ErrInvalidImage, name)
	}
	segStart := 0
	for i := 0; i <= len(repo); i++ {
		if i < len(repo) && repo[i] != '/' {
			if !isNameChar(repo[i]) {
				return fmt.Errorf("%w %q: bad repository", ErrInvalidImage, name)
			}
			continue
		}
		if i == segStart {
			return fmt.Errorf("%w %q: empty path segment", ErrInvalidImage, name)
		}
		segStart = i + 1
	}
	if reg == dockerHub && !strings.Contains(repo, "/") {
		return fmt.Errorf("%w %q: Docker Hub name not normalised (want docker.io/library/…)", ErrInvalidImage, name)
	}
	return nil
}

// match reports whether name matches p. Segments are matched greedily,
// backtracking only to the last "**", so the cost is at most the product
// of the two lengths. It does not allocate.
func (p *pattern) match(name string) bool {
	segs := p.segs
	ti, pos := 0, 0 // next token; start of the next unconsumed segment
	starTi, starPos := -1, 0
	for pos <= len(name) {
		end := segmentEnd(name, pos)
		if ti < len(segs) {
			switch s := segs[ti]; s.kind {
			case segAnyStar:
				starTi, starPos = ti, pos
				ti++
				continue
			case segAny:
				ti++
				pos = end + 1
				continue
			case segGlob:
				if globMatch(s.glob, name[pos:end]) {
					ti++
					pos = end + 1
					continue
				}
			}
		}
		if starTi < 0 {
			return false
		}
		// Let the last "**" absorb one more segment and retry.
		ti = starTi + 1
		starPos = segmentEnd(name, starPos) + 1
		pos = starPos
	}
	for ti < len(segs) && segs[ti].kind == segAnyStar {
		ti++
	}
	return ti == len(segs)
}

// segmentEnd returns the index of the '/' ending the segment that starts
// at pos, or len(name).
func segmentEnd(name string, pos int) int {
	if i := strings.IndexByte(name[pos:], '/'); i >= 0 {
		return pos + i
	}
	return len(name)
}

// globMatch reports whether s matches glob, in which '*' matches any run
// of characters.
func globMatch(glob, s string) bool {
	gi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && glob[gi] == '*':
			star, mark = gi, si
			gi++
		case gi < len(glob) && glob[gi] == s[si]:
			gi++
			si++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}

// intersect reports whether some image name with non-empty segments
// matches both a and b, and returns the shortest-path example it found.
// It explores the product of the two token sequences breadth first.
func intersect(a, b *pattern) (string, bool) {
	type state struct{ i, j int }
	type step struct {
		prev state
		seg  string // segment consumed to get here, or "" for an epsilon move
		set  bool
	}
	n, m := len(a.segs), len(b.segs)
	from := make([]step, (n+1)*(m+1))
	idx := func(s state) int { return s.i*(m+1) + s.j }
	start := state{}
	from[idx(start)].set = true
	queue := []state{start}
	visit := func(s, prev state, segment string) {
		if k := idx(s); !from[k].set {
			from[k] = step{prev: prev, seg: segment, set: true}
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s.i == n && s.j == m {
			var segsOut []string
			for cur := s; cur != start; cur = from[idx(cur)].prev {
				if st := from[idx(cur)]; st.seg != "" {
					segsOut = append(segsOut, st.seg)
				}
			}
			for l, r := 0, len(segsOut)-1; l < r; l, r = l+1, r-1 {
				segsOut[l], segsOut[r] = segsOut[r], segsOut[l]
			}
			return strings.Join(segsOut, "/"), true
		}
		// Epsilon moves: "**" tails may match nothing more.
		if s.i < n && a.segs[s.i].kind == segAnyStar {
			visit(state{s.i + 1, s.j}, s, "")
		}
		if s.j < m && b.segs[s.j].kind == segAnyStar {
			visit(state{s.i, s.j + 1}, s, "")
		}
		if s.i == n || s.j == m {
			continue
		}
		// Consume one segment on both sides.
		sa, sb := a.segs[s.i], b.segs[s.j]
		segment, ok := segExample(sa, sb)
		if !ok {
			continue
		}
		next := s
		if sa.kind != segAnyStar {
			next.i++
		}
		if sb.kind != segAnyStar {
			next.j++
		}
		visit(next, s, segment)
	}
	return "", false
}

// segExample returns a non-empty segment both tokens match, if any.
func segExample(a, b seg) (string, bool) {
	switch {
	case a.kind != segGlob && b.kind != segGlob:
		return "x", true
	case a.kind != segGlob:
		return globExample(b.glob), true
	case b.kind != segGlob:
		return globExample(a.glob), true
	}
	return globIntersect(a.glob, b.glob)
}

// globExample returns a non-empty string glob matches.
func globExample(glob string) string {
	if s := strings.ReplaceAll(glob, "*", ""); s != "" {
		return s
	}
	return "x"
}

// globIntersect reports whether some non-empty string matches both globs,
// and returns one.
func globIntersect(a, b string) (string, bool) {
	// States are (position in a, position in b, consumed anything yet).
	type state struct {
		i, j     int
		nonEmpty bool
	}
	type step struct {
		prev state
		c    byte // character consumed to get here, or 0 for an epsilon move
		set  bool
	}
	n, m := len(a), len(b)
	idx := func(s state) int {
		k := (s.i*(m+1) + s.j) * 2
		if s.nonEmpty {
			k++
		}
		return k
	}
	from := make([]step, (n+1)*(m+1)*2)
	start := state{}
	from[idx(start)].set = true
	queue := []state{start}
	visit := func(s, prev state, c byte) {
		if k := idx(s); !from[k].set {
			from[k] = step{prev: prev, c: c, set: true}
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s.i == n && s.j == m && s.nonEmpty {
			var out []byte
			for cur := s; cur != start; cur = from[idx(cur)].prev {
				if st := from[idx(cur)]; st.c != 0 {
					out = append(out, st.c)
				}
			}
			for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
				out[l], out[r] = out[r], out[l]
			}
			return string(out), true
		}
		if s.i < n && a[s.i] == '*' {
			visit(state{s.i + 1, s.j, s.nonEmpty}, s, 0)
		}
		if s.j < m && b[s.j] == '*' {
			visit(state{s.i, s.j + 1, s.nonEmpty}, s, 0)
		}
		if s.i == n || s.j == m {
			continue
		}
		ca, cb := a[s.i], b[s.j]
		next := state{s.i, s.j, true}
		var c byte
		switch {
		case ca == '*' && cb == '*':
			c = 'x'
		case ca == '*':
			c = cb
			next.j++
		case cb == '*':
			c = ca
			next.i++
		case ca == cb:
			c = ca
			next.i++
			next.j++
		default:
			continue
		}
		visit(next, s, c)
	}
	return "", false
}
