package policy

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Defaults of a Config.
const (
	defaultListen            = "127.0.0.1:5050"
	defaultVerdictTTL        = time.Hour
	defaultDenyTTL           = 30 * time.Second
	defaultMaxEntries        = 100000
	defaultTagTTL            = 5 * time.Second
	defaultManifestBytes     = 16 << 20
	defaultMaxBytes          = 10 << 30
	defaultMaxManifestBytes  = 4 << 20
	defaultMaxSignatures     = 64
	defaultMaxSignatureBytes = 4 << 20
)

// The known fields of each mapping of the schema.
var (
	topFields         = []string{"listen", "tls", "upstreams", "defaultRegistry", "trustedRoot", "trustRoots", "tuf", "policies", "unmatched", "cache", "limits"}
	tlsFields         = []string{"certFile", "keyFile"}
	upstreamFields    = []string{"registry", "endpoint", "auth", "caFile"}
	authFields        = []string{"username", "passwordFile", "dockerConfig"}
	tufFields         = []string{"mirror", "root"}
	ruleFields        = []string{"name", "images", "mode", "signers", "signatures", "attestations"}
	signerFields      = []string{"name", "key", "keyless", "tlog"}
	keyFields         = []string{"path", "pem"}
	keylessFields     = []string{"issuer", "issuerRegExp", "subject", "subjectRegExp", "extensions", "trustRoot"}
	signaturesFields  = []string{"threshold", "signers"}
	attestationFields = []string{"predicateType", "signers", "condition"}
	cacheFields       = []string{"verdictTTL", "denyTTL", "maxEntries", "tagTTL", "manifestBytes", "dir", "maxBytes"}
	limitsFields      = []string{"maxManifestBytes", "maxSignatures", "maxSignatureBytes"}
)

// config decodes the top-level mapping.
func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{
		File:      d.file,
		Listen:    defaultListen,
		Unmatched: ActionDeny,
		Cache: Cache{
			VerdictTTL:    defaultVerdictTTL,
			DenyTTL:       defaultDenyTTL,
			MaxEntries:    defaultMaxEntries,
			TagTTL:        defaultTagTTL,
			ManifestBytes: defaultManifestBytes,
			MaxBytes:      defaultMaxBytes,
		},
		Limits: Limits{
			MaxManifestBytes:  defaultMaxManifestBytes,
			MaxSignatures:     defaultMaxSignatures,
			MaxSignatureBytes: defaultMaxSignatureBytes,
		},
	}
	m, ok := d.mapping(root, "", topFields)
	if !ok {
		return cfg
	}
	if v, ok := d.str(m, "listen"); ok {
		if err := checkListen(v); err != nil {
			d.add(m.line("listen"), "listen", err)
		} else {
			cfg.Listen = v
		}
	}
	if n, ok := m.vals["tls"]; ok {
		cfg.TLS = d.tls(n, "tls")
	}
	d.require(m, "upstreams")
	cfg.Upstreams = d.upstreams(m)
	if v, ok := d.str(m, "defaultRegistry"); ok {
		r := NormalizeRegistry(v)
		switch {
		case cfg.Upstream(r) != nil:
			cfg.DefaultRegistry = r
		case d.upstreamsOK:
			d.add(m.line("defaultRegistry"), "defaultRegistry",
				fmt.Errorf("registry %q is not a configured upstream (upstreams: %s)", v, upstreamNames(cfg)))
		}
	}
	if m.has("trustedRoot") {
		cfg.TrustedRoot, _ = d.filePath(m, "trustedRoot")
	}
	trustRootsOK := true
	if n, ok := m.vals["trustRoots"]; ok {
		cfg.TrustRoots, trustRootsOK = d.trustRoots(n, "trustRoots")
	}
	if n, ok := m.vals["tuf"]; ok {
		cfg.TUF = d.tuf(n, "tuf")
	}
	if v, ok := d.enum(m, "unmatched", string(ActionDeny), string(ActionAllow)); ok {
		cfg.Unmatched = Action(v)
	}
	if n, ok := m.vals["cache"]; ok {
		d.cache(n, "cache", &cfg.Cache)
	}
	if n, ok := m.vals["limits"]; ok {
		d.limits(n, "limits", &cfg.Limits)
	}
	if items, ok := d.list(m, "policies"); ok {
		cfg.Policies = d.rules(items, "policies", cfg, trustRootsOK)
	}
	cfg.patterns = d.checkPatterns(cfg)
	return cfg
}

// checkListen validates a host:port listen address.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// tls decodes the tls mapping.
func (d *decoder) tls(n *yaml.Node, path string) *TLS {
	m, ok := d.mapping(n, path, tlsFields)
	if !ok {
		return nil
	}
	ok = d.require(m, "certFile", "keyFile")
	cert, certOK := d.filePath(m, "certFile")
	key, keyOK := d.filePath(m, "keyFile")
	if !ok || !certOK || !keyOK {
		return nil
	}
	return &TLS{CertFile: cert, KeyFile: key}
}

// upstreams decodes the upstreams list.
func (d *decoder) upstreams(m *mapping) []*Upstream {
	items, ok := d.list(m, "upstreams")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.add(m.line("upstreams"), "upstreams", errors.New("must list at least one upstream"))
		return nil
	}
	// Upstreams with a valid registry but other problems are kept, so
	// that references to them are not reported as well; the Config is
	// not returned anyway.
	d.upstreamsOK = true
	var out []*Upstream
	seen := make(map[string]int)
	for i, item := range items {
		path := index("upstreams", i)
		u, line := d.upstream(item, path)
		if u == nil {
			d.upstreamsOK = false
			continue
		}
		if first, dup := seen[u.Registry]; dup {
			d.add(line, join(path, "registry"), fmt.Errorf("registry %q is configured twice (first at line %d)", u.Registry, first))
			continue
		}
		seen[u.Registry] = line
		out = append(out, u)
	}
	return out
}

// upstream decodes one upstream and returns it with the line of its
// registry, or nil when it has no valid registry.
func (d *decoder) upstream(n *yaml.Node, path string) (*Upstream, int) {
	m, ok := d.mapping(n, path, upstreamFields)
	if !ok {
		return nil, 0
	}
	d.require(m, "registry", "endpoint")
	u := &Upstream{}
	if v, vOK := d.str(m, "registry"); vOK {
		u.Registry = NormalizeRegistry(v)
		if err := checkRegistry(u.Registry); err != nil {
			d.add(m.line("registry"), join(path, "registry"), err)
			ok = false
		}
	} else {
		ok = false
	}
	if v, vOK := d.str(m, "endpoint"); vOK {
		ep, err := parseEndpoint(v, false)
		if err != nil {
			d.add(m.line("endpoint"), join(path, "endpoint"), err)
		}
		u.Endpoint = ep
	}
	if an, has := m.vals["auth"]; has {
		u.Auth = d.auth(an, join(path, "auth"))
	}
	if m.has("caFile") {
		u.CAFile, _ = d.filePath(m, "caFile")
	}
	if !ok {
		return nil, 0
	}
	return u, m.line("registry")
}

// checkRegistry validates a normalised registry name: host[:port].
func checkRegistry(r string) error {
	if strings.Contains(r, "://") || strings.Contains(r, "/") {
		return fmt.Errorf("%q is not a registry name: write the host name (e.g. docker.io) here and the URL in endpoint", r)
	}
	if err := checkRegistryName(r, false); err != nil {
		return fmt.Errorf("%q is not a registry name (host or host:port): %w", r, err)
	}
	return nil
}

// parseEndpoint validates an http or https base URL. Its messages never
// quote the URL, which might hold credentials. Paths are allowed only
// when allowPath is set.
func parseEndpoint(s string, allowPath bool) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes the URL; do not pass it on.
		return nil, errors.New("not a valid URL")
	}
	if u.User != nil {
		return nil, errors.New("URL must not contain credentials (user:password@): secrets never go in the configuration; use auth")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("URL scheme %q is not supported: use https or http", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("URL must name a host, e.g. https://registry.example.com")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return nil, errors.New("URL must not have a query or fragment")
	}
	if !allowPath && u.Path != "" && u.Path != "/" {
		return nil, errors.New("URL must not have a path: give only scheme and host (pullgate adds /v2/)")
	}
	if !allowPath {
		u.Path, u.RawPath = "", ""
	}
	return u, nil
}

// auth decodes an upstream's auth mapping.
func (d *decoder) auth(n *yaml.Node, path string) *Auth {
	m, ok := d.mapping(n, path, authFields)
	if !ok {
		return nil
	}
	hasUser, hasPW, hasDC := m.has("username"), m.has("passwordFile"), m.has("dockerConfig")
	switch {
	case hasDC && (hasUser || hasPW):
		d.errorf(m.node, path, "set either username with passwordFile, or dockerConfig, not both")
		return nil
	case hasUser && !hasPW:
		d.errorf(m.node, path, "username requires passwordFile")
		return nil
	case hasPW && !hasUser:
		d.errorf(m.node, path, "passwordFile requires username")
		return nil
	case !hasUser && !hasDC:
		d.errorf(m.node, path, "set username with passwordFile, or dockerConfig")
		return nil
	}
	a := &Auth{}
	if hasDC {
		if a.DockerConfig, ok = d.filePath(m, "dockerConfig"); !ok {
			return nil
		}
		return a
	}
	user, userOK := d.str(m, "username")
	pw, pwOK := d.filePath(m, "passwordFile")
	if !userOK || !pwOK {
		return nil
	}
	a.Username, a.PasswordFile = user, pw
	return a
}

// trustRoots decodes the named trusted roots.
func (d *decoder) trustRoots(n *yaml.Node, path string) (map[string]string, bool) {
	ps, _, ok := d.pairs(n, path)
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		if p.key == "" {
			d.errorf(p.keyN, path, "trusted root names must not be empty")
			ok = false
			continue
		}
		v, vOK := d.pathValue(p.value, join(path, p.key))
		if !vOK {
			ok = false
			continue
		}
		out[p.key] = v
	}
	return out, ok
}

// tuf decodes the tuf mapping.
func (d *decoder) tuf(n *yaml.Node, path string) *TUF {
	m, ok := d.mapping(n, path, tufFields)
	if !ok {
		return nil
	}
	ok = d.require(m, "mirror")
	t := &TUF{}
	if v, vOK := d.str(m, "mirror"); vOK {
		if _, err := parseEndpoint(v, true); err != nil {
			d.add(m.line("mirror"), join(path, "mirror"), err)
			ok = false
		}
		t.Mirror = v
	}
	if m.has("root") {
		var rootOK bool
		t.Root, rootOK = d.filePath(m, "root")
		ok = ok && rootOK
	}
	if !ok {
		return nil
	}
	return t
}

// cache decodes the cache mapping into c.
func (d *decoder) cache(n *yaml.Node, path string, c *Cache) {
	m, ok := d.mapping(n, path, cacheFields)
	if !ok {
		return
	}
	if v, ok := d.duration(m, "verdictTTL"); ok {
		c.VerdictTTL = v
	}
	if v, ok := d.duration(m, "denyTTL"); ok {
		c.DenyTTL = v
	}
	if v, ok := d.positive(m, "maxEntries"); ok {
		c.MaxEntries = int(min(v, int64(maxInt)))
	}
	if v, ok := d.str(m, "tagTTL"); ok {
		ttl, err := time.ParseDuration(v)
		switch {
		case err != nil:
			d.add(m.line("tagTTL"), join(path, "tagTTL"), fmt.Errorf("%q is not a duration such as 5s (0s: resolve every request upstream)", v))
		case ttl < 0:
			d.add(m.line("tagTTL"), join(path, "tagTTL"), fmt.Errorf("must not be negative, not %s", v))
		default:
			c.TagTTL = ttl
		}
	}
	if v, ok := d.byteSize(m, "manifestBytes"); ok {
		c.ManifestBytes = v
	}
	if m.has("dir") {
		c.Dir, _ = d.filePath(m, "dir")
	}
	if v, ok := d.byteSize(m, "maxBytes"); ok {
		c.MaxBytes = v
	}
}

// byteSize returns the positive size field name of m: an integer number
// of bytes, or a number with a binary suffix (Ki, Mi, Gi, Ti).
func (d *decoder) byteSize(m *mapping, name string) (int64, bool) {
	s, ok := d.str(m, name)
	if !ok {
		return 0, false
	}
	v, err := parseByteSize(s)
	if err != nil {
		d.add(m.line(name), join(m.path, name), err)
		return 0, false
	}
	return v, true
}

// parseByteSize parses a positive size: an integer number of bytes, or
// an integer followed by Ki, Mi, Gi or Ti (powers of 1024, as in
// Kubernetes quantities), e.g. 512Mi or 20Gi.
func parseByteSize(s string) (int64, error) {
	num, shift := s, 0
	for i, suffix := range []string{"Ki", "Mi", "Gi", "Ti"} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, shift = n, 10*(i+1)
			break
		}
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512Mi or 20Gi", s)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512Mi or 20Gi", s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("must be positive, not %s", s)
	}
	if v > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v << shift, nil
}

const maxInt = int(^uint(0) >> 1)

// limits decodes the limits mapping into l.
func (d *decoder) limits(n *yaml.Node, path string, l *Limits) {
	m, ok := d.mapping(n, path, limitsFields)
	if !ok {
		return
	}
	if v, ok := d.positive(m, "maxManifestBytes"); ok {
		l.MaxManifestBytes = v
	}
	if v, ok := d.positive(m, "maxSignatures"); ok {
		l.MaxSignatures = int(min(v, int64(maxInt)))
	}
	if v, ok := d.positive(m, "maxSignatureBytes"); ok {
		l.MaxSignatureBytes = v
	}
}

// duration returns the positive Go duration field name of m.
func (d *decoder) duration(m *mapping, name string) (time.Duration, bool) {
	s, ok := d.str(m, name)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.add(m.line(name), join(m.path, name), fmt.Errorf("%q is not a duration such as 30s or 1h", s))
		return 0, false
	case v <= 0:
		d.add(m.line(name), join(m.path, name), fmt.Errorf("must be positive, not %s", s))
		return 0, false
	}
	return v, true
}

// checkName validates a policy or signer name.
func checkName(s string) error {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("name must not contain control characters")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("name must not start or end with spaces")
	}
	return nil
}

// rules decodes the policies list.
func (d *decoder) rules(items []*yaml.Node, path string, cfg *Config, trustRootsOK bool) []*Rule {
	var out []*Rule
	seen := make(map[string]int)
	for i, item := range items {
		r, line := d.rule(item, index(path, i), cfg, trustRootsOK)
		if r == nil {
			continue
		}
		if first, dup := seen[r.Name]; dup {
			d.add(line, join(index(path, i), "name"), fmt.Errorf("policy %q is defined twice (first at line %d)", r.Name, first))
		} else {
			seen[r.Name] = line
		}
		out = append(out, r)
	}
	return out
}

// rule decodes one policy and returns it with the line of its name.
func (d *decoder) rule(n *yaml.Node, path string, cfg *Config, trustRootsOK bool) (*Rule, int) {
	m, ok := d.mapping(n, path, ruleFields)
	if !ok {
		return nil, 0
	}
	d.require(m, "name", "images")
	r := &Rule{Mode: ModeEnforce}
	nameOK := false
	if v, ok := d.str(m, "name"); ok {
		if err := checkName(v); err != nil {
			d.add(m.line("name"), join(path, "name"), err)
		} else {
			r.Name, nameOK = v, true
		}
	}
	d.images(m, r)
	if v, ok := d.enum(m, "mode", string(ModeEnforce), string(ModeAudit)); ok {
		r.Mode = Mode(v)
	}

	// Signers, by name. signersOK is false when some signer could not be
	// named, so that references to it are not reported as unknown.
	byName := make(map[string]*Signer)
	signersOK := true
	if items, ok := d.list(m, "signers"); ok {
		sp := join(path, "signers")
		lines := make(map[string]int)
		for i, item := range items {
			s, line := d.signer(item, index(sp, i), cfg, trustRootsOK)
			if s == nil {
				signersOK = false
				continue
			}
			if first, dup := lines[s.Name]; dup {
				d.add(line, join(index(sp, i), "name"), fmt.Errorf("signer %q is defined twice in this policy (first at line %d)", s.Name, first))
				continue
			}
			lines[s.Name] = line
			byName[s.Name] = s
			r.Signers = append(r.Signers, s)
		}
	} else if m.has("signers") {
		signersOK = false
	}

	d.signatures(m, r, byName, signersOK, nameOK)

	if items, ok := d.list(m, "attestations"); ok {
		ap := join(path, "attestations")
		for i, item := range items {
			if a := d.attestation(item, index(ap, i), r, byName, signersOK); a != nil {
				r.Attestations = append(r.Attestations, a)
			}
		}
	}
	if !nameOK {
		return nil, 0
	}
	return r, m.line("name")
}

// images decodes a rule's image patterns.
func (d *decoder) images(m *mapping, r *Rule) {
	texts, nodes, _ := d.stringList(m, "images")
	path := join(m.path, "images")
	seen := make(map[string]int)
	for i, s := range texts {
		p, err := compilePattern(s)
		line := nodes[i].Line
		ip := index(path, i)
		if err != nil {
			d.add(line, ip, err)
			continue
		}
		if first, dup := seen[p.text]; dup {
			d.add(line, ip, fmt.Errorf("image pattern %q is listed twice (first at line %d)", p.text, first))
			continue
		}
		seen[p.text] = line
		r.Images = append(r.Images, p.text)
		d.patterns = append(d.patterns, rulePattern{pattern: p, rule: r, line: line, path: ip})
	}
}

// signer decodes one signer and returns it with the line of its name.
// It returns nil only when the signer has no usable name.
func (d *decoder) signer(n *yaml.Node, path string, cfg *Config, trustRootsOK bool) (*Signer, int) {
	m, ok := d.mapping(n, path, signerFields)
	if !ok {
		return nil, 0
	}
	d.require(m, "name")
	s := &Signer{}
	nameOK := false
	if v, ok := d.str(m, "name"); ok {
		if err := checkName(v); err != nil {
			d.add(m.line("name"), join(path, "name"), err)
		} else {
			s.Name, nameOK = v, true
		}
	}
	kn, hasKey := m.vals["key"]
	ln, hasKeyless := m.vals["keyless"]
	switch {
	case hasKey && hasKeyless:
		d.errorf(m.node, path, "set exactly one of key and keyless, not both")
	case hasKey:
		s.Key = d.key(kn, join(path, "key"))
		s.TLog = TLogOptional
	case hasKeyless:
		s.Keyless = d.keyless(ln, join(path, "keyless"), cfg, trustRootsOK)
		s.TLog = TLogRequired
	default:
		d.errorf(m.node, path, "set key or keyless")
	}
	if v, ok := d.enum(m, "tlog", string(TLogRequired), string(TLogOptional), string(TLogSkip)); ok {
		s.TLog = TLogPolicy(v)
	}
	if !nameOK {
		return nil, 0
	}
	return s, m.line("name")
}

// key decodes a key signer's key and reads and parses it.
func (d *decoder) key(n *yaml.Node, path string) *Key {
	m, ok := d.mapping(n, path, keyFields)
	if !ok {
		return nil
	}
	k := &Key{}
	var where string // names the key in messages
	switch {
	case m.has("path") && m.has("pem"):
		d.errorf(m.node, path, "set exactly one of path and pem, not both")
		return nil
	case m.has("path"):
		p, ok := d.filePath(m, "path")
		if !ok {
			return nil
		}
		data, err := d.readFile(p)
		if err != nil {
			d.add(m.line("path"), join(path, "path"), fmt.Errorf("read key: %w", err))
			return nil
		}
		d.keyFiles = append(d.keyFiles, data)
		k.Path, k.PEM, where = p, data, p
	case m.has("pem"):
		v, ok := d.str(m, "pem")
		if !ok {
			return nil
		}
		k.PEM, where = []byte(v), "inline key"
	default:
		d.errorf(m.node, path, "set path or pem")
		return nil
	}
	pub, err := parsePublicKey(k.PEM)
	if err != nil {
		field := "pem"
		if k.Path != "" {
			field = "path"
		}
		d.add(m.line(field), join(path, field), fmt.Errorf("%s: %w", where, err))
		return nil
	}
	k.PublicKey = pub
	return k
}

// keyless decodes a keyless identity.
func (d *decoder) keyless(n *yaml.Node, path string, cfg *Config, trustRootsOK bool) *Keyless {
	m, ok := d.mapping(n, path, keylessFields)
	if !ok {
		return nil
	}
	k := &Keyless{}
	ok = d.exactlyOne(m, "issuer", "issuerRegExp", &k.Issuer, &k.IssuerRegExp)
	ok = d.exactlyOne(m, "subject", "subjectRegExp", &k.Subject, &k.SubjectRegExp) && ok
	if en, has := m.vals["extensions"]; has {
		ep := join(path, "extensions")
		ps, _, psOK := d.pairs(en, ep)
		ok = ok && psOK
		k.Extensions = make(map[string]string, len(ps))
		for _, p := range ps {
			if p.key == "issuer" {
				d.errorf(p.keyN, ep, "issuer is not an extension here: use keyless.issuer or keyless.issuerRegExp")
				ok = false
				continue
			}
			if !slices.Contains(extensionNames, p.key) {
				d.errorf(p.keyN, ep, "%s", unknownField(p.key, extensionNames))
				ok = false
				continue
			}
			v, vOK := d.scalar(p.value, join(ep, p.key))
			if !vOK {
				ok = false
				continue
			}
			k.Extensions[p.key] = v
		}
	}
	if v, vOK := d.str(m, "trustRoot"); vOK {
		if _, known := cfg.TrustRoots[v]; !known && trustRootsOK {
			names := make([]string, 0, len(cfg.TrustRoots))
			for name := range cfg.TrustRoots {
				names = append(names, name)
			}
			slices.Sort(names)
			msg := fmt.Sprintf("trusted root %q is not defined in trustRoots", v)
			if len(names) > 0 {
				msg += " (defined: " + strings.Join(names, ", ") + ")"
			}
			d.add(m.line("trustRoot"), join(path, "trustRoot"), errors.New(msg))
			ok = false
		}
		k.TrustRoot = v
	} else if m.has("trustRoot") {
		ok = false
	}
	if !ok {
		return nil
	}
	return k
}

// exactlyOne decodes a pair of fields of which exactly one must be set:
// an exact value and a regular expression.
func (d *decoder) exactlyOne(m *mapping, exact, re string, exactOut, reOut *string) bool {
	switch {
	case m.has(exact) && m.has(re):
		d.errorf(m.node, m.path, "set exactly one of %s and %s, not both", exact, re)
		return false
	case m.has(exact):
		v, ok := d.str(m, exact)
		*exactOut = v
		return ok
	case m.has(re):
		v, ok := d.str(m, re)
		if !ok {
			return false
		}
		if _, err := regexp.Compile(v); err != nil {
			d.add(m.line(re), join(m.path, re), fmt.Errorf("invalid regular expression: %w", err))
			return false
		}
		if _, err := regexp.Compile(anchor(v)); err != nil {
			d.add(m.line(re), join(m.path, re), fmt.Errorf("invalid regular expression: %w", err))
			return false
		}
		*reOut = v
		return true
	}
	d.errorf(m.node, m.path, "missing %s or %s", exact, re)
	return false
}

// signatures decodes a rule's signature requirement.
func (d *decoder) signatures(m *mapping, r *Rule, byName map[string]*Signer, signersOK, nameOK bool) {
	threshold, explicit := int64(1), false
	line, path := m.node.Line, join(m.path, "signatures")
	var named []*Signer
	namedGiven := false
	if n, has := m.vals["signatures"]; has {
		sm, ok := d.mapping(n, path, signaturesFields)
		if !ok {
			return
		}
		line = sm.node.Line
		if sm.has("threshold") {
			v, ok := d.integer(sm, "threshold")
			if !ok {
				return
			}
			if v < 0 {
				d.add(sm.line("threshold"), join(path, "threshold"), fmt.Errorf("must not be negative, not %d", v))
				return
			}
			threshold, explicit, line = v, true, sm.line("threshold")
		}
		if sm.has("signers") {
			var ok bool
			named, ok = d.signerRefs(sm, "signers", byName, signersOK)
			if !ok {
				return
			}
			namedGiven = true
		}
	}
	if !signersOK {
		return
	}
	if len(r.Signers) == 0 && !(explicit && threshold == 0) {
		name := r.Name
		if !nameOK {
			name = "?"
		}
		d.errorf(m.node, m.path, "policy %q has no signers: list signers, or write signatures.threshold: 0 to require no signature", name)
		return
	}
	counted := slices.Clip(r.Signers) // shared, so appends cannot clobber
	if namedGiven {
		counted = named
	}
	if threshold > int64(len(counted)) {
		d.add(line, join(path, "threshold"), fmt.Errorf("threshold %d is more than the %d signers that count", threshold, len(counted)))
		return
	}
	r.Signatures = Signatures{Threshold: int(threshold), Signers: counted}
}

// signerRefs decodes a non-empty list of names of the rule's signers.
func (d *decoder) signerRefs(m *mapping, name string, byName map[string]*Signer, signersOK bool) ([]*Signer, bool) {
	names, nodes, ok := d.stringList(m, name)
	if !ok {
		return nil, false
	}
	path := join(m.path, name)
	known := make([]string, 0, len(byName))
	for n := range byName {
		known = append(known, n)
	}
	slices.Sort(known)
	var out []*Signer
	seen := make(map[string]int)
	for i, n := range names {
		s, found := byName[n]
		switch {
		case !found && !signersOK:
			ok = false
		case !found:
			msg := fmt.Sprintf("unknown signer %q", n)
			if sug := suggest(n, known); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			} else if len(known) > 0 {
				msg += " (signers of this policy: " + strings.Join(known, ", ") + ")"
			} else {
				msg += ": this policy has no signers"
			}
			d.add(nodes[i].Line, index(path, i), errors.New(msg))
			ok = false
		default:
			if first, dup := seen[n]; dup {
				d.add(nodes[i].Line, index(path, i), fmt.Errorf("signer %q is listed twice (first at line %d)", n, first))
				ok = false
				continue
			}
			seen[n] = nodes[i].Line
			out = append(out, s)
		}
	}
	return out, ok
}

// attestation decodes one attestation requirement.
func (d *decoder) attestation(n *yaml.Node, path string, r *Rule, byName map[string]*Signer, signersOK bool) *Attestation {
	m, ok := d.mapping(n, path, attestationFields)
	if !ok {
		return nil
	}
	ok = d.require(m, "predicateType")
	a := &Attestation{Signers: slices.Clip(r.Signers)}
	if v, vOK := d.str(m, "predicateType"); vOK {
		pt, err := ExpandPredicateType(v)
		if err != nil {
			d.add(m.line("predicateType"), join(path, "predicateType"), err)
			ok = false
		}
		a.PredicateType = pt
	}
	if m.has("signers") {
		named, sOK := d.signerRefs(m, "signers", byName, signersOK)
		ok = ok && sOK
		a.Signers = named
	} else if len(r.Signers) == 0 && signersOK {
		d.errorf(m.node, path, "policy has no signers whose attestations could count: list signers in the policy")
		ok = false
	}
	if m.has("condition") {
		var cOK bool
		a.Condition, cOK = d.str(m, "condition")
		if cOK {
			a.Program, cOK = d.condition(m, a.Condition)
		}
		ok = ok && cOK
	}
	if !ok {
		return nil
	}
	return a
}

// condition compiles the condition field of m, whose text is src, and
// reports a CEL error at the line of the configuration it is on: for a
// literal block scalar (condition: |) the expression's own line counts
// from the line after the indicator.
func (d *decoder) condition(m *mapping, src string) (*Condition, bool) {
	c, err := CompileCondition(src)
	if err == nil {
		return c, true
	}
	line := m.line("condition")
	var ce *ConditionError
	if errors.As(err, &ce) {
		n := d.resolve(m.vals["condition"], join(m.path, "condition"))
		switch {
		case ce.Line == 0:
			err = fmt.Errorf("invalid CEL expression: %s", ce.Msg)
		case n != nil && n.Style&yaml.LiteralStyle != 0:
			line = n.Line + ce.Line
			err = fmt.Errorf("invalid CEL expression: column %d: %s", ce.Column, ce.Msg)
		case !strings.Contains(src, "\n"):
			err = fmt.Errorf("invalid CEL expression: column %d: %s", ce.Column, ce.Msg)
		default:
			err = fmt.Errorf("invalid CEL expression: %w", ce)
		}
	}
	d.add(line, join(m.path, "condition"), err)
	return nil, false
}

// checkPatterns checks every image pattern against the upstreams and
// against the patterns of other rules, and returns them most specific
// first.
func (d *decoder) checkPatterns(cfg *Config) []rulePattern {
	if len(d.patterns) > maxPatterns {
		d.add(d.patterns[maxPatterns].line, d.patterns[maxPatterns].path,
			fmt.Errorf("more than %d image patterns", maxPatterns))
		return nil
	}
	if d.upstreamsOK {
		for _, p := range d.patterns {
			if p.segs[0].kind != segGlob {
				continue // the bare "**"
			}
			reg := p.segs[0].glob
			if slices.ContainsFunc(cfg.Upstreams, func(u *Upstream) bool { return globMatch(reg, u.Registry) }) {
				continue
			}
			what := fmt.Sprintf("registry %q is not a configured upstream", reg)
			if strings.Contains(reg, "*") {
				what = fmt.Sprintf("registry pattern %q matches no configured upstream", reg)
			}
			d.add(p.line, p.path, fmt.Errorf("image pattern %q: %s (upstreams: %s); the first segment of a pattern is the registry", p.text, what, upstreamNames(cfg)))
		}
	}
	sorted := slices.Clone(d.patterns)
	sortPatterns(sorted)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].spec == sorted[i].spec {
			j++
		}
		d.checkTies(sorted[i:j])
		i = j
	}
	return sorted
}

// checkTies reports every pair of patterns of equal specificity, from
// different rules, that some image matches. The group is in file order.
func (d *decoder) checkTies(group []rulePattern) {
	for b := 1; b < len(group); b++ {
		for a := 0; a < b; a++ {
			pa, pb := &group[a], &group[b]
			if d.tooMany {
				return
			}
			if pa.rule == pb.rule || !mayIntersect(&pa.pattern, &pb.pattern) {
				continue
			}
			if pa.text == pb.text {
				d.add(pb.line, pb.path, fmt.Errorf("policies %q (line %d) and %q (line %d) both list %q: an image must be governed by one policy",
					pa.rule.Name, pa.line, pb.rule.Name, pb.line, pa.text))
				continue
			}
			if example, ok := intersect(&pa.pattern, &pb.pattern); ok {
				d.add(pb.line, pb.path, fmt.Errorf("policies %q (line %d) and %q (line %d) match the same images with equal specificity: %q vs %q (both match %s); make one more specific",
					pa.rule.Name, pa.line, pb.rule.Name, pb.line, pa.text, pb.text, example))
			}
		}
	}
}

// mayIntersect is a cheap necessary condition for [intersect], which
// rules out most pairs of patterns: every name a pattern matches starts
// with the text before its first '*' and ends with the text after its
// last, and a pattern without "**" matches only names with its number of
// segments.
func mayIntersect(a, b *pattern) bool {
	ia, ib := strings.IndexByte(a.text, '*'), strings.IndexByte(b.text, '*')
	if ia < 0 && ib < 0 {
		return a.text == b.text
	}
	preA, preB := a.text, b.text
	if ia >= 0 {
		preA = a.text[:ia]
	}
	if ib >= 0 {
		preB = b.text[:ib]
	}
	if !strings.HasPrefix(preA, preB) && !strings.HasPrefix(preB, preA) {
		return false
	}
	sufA, sufB := a.text[strings.LastIndexByte(a.text, '*')+1:], b.text[strings.LastIndexByte(b.text, '*')+1:]
	if !strings.HasSuffix(sufA, sufB) && !strings.HasSuffix(sufB, sufA) {
		return false
	}
	if a.spec.doubleStars == 0 && b.spec.doubleStars == 0 && len(a.segs) != len(b.segs) {
		return false
	}
	return true
}

// upstreamNames lists the configured registries for messages.
func upstreamNames(cfg *Config) string {
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Registry
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
