package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/proxy/upstream"
	"github.com/pullgate/pullgate/verifier"
)

// fetched is a manifest as fetched and hashed by pullgate: the bytes that
// are verified and served.
type fetched struct {
	body      []byte
	mediaType string
	digest    digest.Digest // computed over body, never taken from upstream
	doc       *manifestDoc
}

// decision is what the proxy does with a manifest.
type decision struct {
	verdict *verifier.Verdict
	serve   bool // allowed, or denied under an audit rule
	// covers says whether an allowed index's children are covered.
	covers bool
}

// manifest serves GET and HEAD /v2/<name>/manifests/<reference>. HEAD and
// GET share this one path: the same resolution, policy and verdict.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.target(r)
	if err != nil {
		return err
	}
	ref, err := parseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	ctx, span := s.tracer.Start(ctx, "manifest")
	defer span.End()
	span.SetAttributes(attribute.String("image", t.image), attribute.String("reference", ref.String()))

	if err := s.refuseUnmatched(t, ref); err != nil {
		return denyManifest(w, r, err)
	}
	m, err := s.resolve(ctx, t, ref)
	if err != nil {
		return err
	}
	d, err := s.decide(ctx, t, ref, m)
	if err != nil {
		return err
	}
	if !d.serve {
		return denyManifest(w, r, &deniedError{v: d.verdict})
	}
	s.grant(t, m, d)

	h := w.Header()
	h.Set("Content-Type", m.mediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.body)))
	h.Set("Docker-Content-Digest", m.digest.String())
	h.Set("ETag", `"`+m.digest.String()+`"`)
	if t.ns != "" {
		h.Set("OCI-Namespace", t.ns)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := w.Write(m.body); err != nil {
		s.log.DebugContext(ctx, "write manifest", "error", err)
	}
	return nil
}

// denyManifest answers a request for a denied manifest. A GET gets the
// usual 403 and OCI error body, which containerd shows ("… 403 Forbidden -
// Server message: denied: …"). A HEAD has no body, and containerd
// resolves tags and digests with HEAD and shows only the status line of a
// failed one, so a HEAD gets the same 403 with the denial as the status
// line's reason phrase: "403 Forbidden (denied: <image>@<digest> by policy
// …)". The HEAD must stay a failure: a 2xx (with the digest, or without it
// so that containerd GETs instead) lets containerd reuse a manifest it
// already holds, pulled while it was allowed, without asking again
// (measured with containerd 1.6; see e2e/containerd_pull_test.go).
func denyManifest(w http.ResponseWriter, r *http.Request, err error) error {
	if r.Method != http.MethodHead {
		return err
	}
	oe, _ := toOCI(err)
	if !writeHeadWithReason(w, r, oe) {
		return err // connection not ours to take over: the plain 403
	}
	return nil
}

// writeHeadWithReason writes oe as the response to a HEAD, with its text
// as the reason phrase, on the hijacked connection (net/http only writes
// the standard phrase), and closes the connection. Headers are those of
// writeError. It returns false, having written nothing, when the
// connection cannot be taken over (HTTP/2).
func writeHeadWithReason(w http.ResponseWriter, r *http.Request, oe *ociError) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: oe.code, Message: oe.message, Detail: oe.detail}}})
	h := w.Header().Clone()
	for k, v := range oe.header {
		h[k] = v
	}
	h.Del("Docker-Content-Digest")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Connection", "close")
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	status := oe.httpStatus()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = fmt.Fprintf(buf, "%s %d %s (%s)\r\n", proto, status, http.StatusText(status), reasonPhrase(oe.Error()))
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_ = buf.Flush()
	if rec, ok := w.(*recorder); ok {
		rec.status = status // for the access log
	}
	return true
}

// reasonPhrase makes s safe for a status line: printable ASCII only
// (anything else, CR and LF included, becomes '?'), at most 1 KiB.
func reasonPhrase(s string) string {
	const limit = 1024
	b := make([]byte, 0, min(len(s), limit))
	for _, c := range s {
		if len(b) == limit {
			return string(b[:limit-3]) + "..."
		}
		if c < ' ' || c > '~' {
			c = '?'
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// target routes the request's name and ns parameter.
func (s *Server) target(r *http.Request) (target, error) {
	return route(mux.Vars(r)["name"], r.URL.Query().Get("ns"), s.cfg.DefaultRegistry, func(reg string) bool {
		_, ok := s.upstreams[reg]
		return ok
	})
}

// refuseUnmatched denies, before any upstream request, an image that no
// rule names when unmatched images are denied: there is nothing to
// resolve, and resolving would tell the client whether it exists.
func (s *Server) refuseUnmatched(t target, ref reference) error {
	if s.cfg.Unmatched == policy.ActionAllow {
		return nil
	}
	if _, err := s.cfg.Match(t.image); !errors.Is(err, policy.ErrNoRule) {
		return nil // a rule governs it (or matching failed: decide reports that)
	}
	img := verifier.Image{Name: t.image, Digest: ref.digest}
	v := &verifier.Verdict{Image: img, Reasons: []string{"no policy matches " + t.image + " and unmatched is deny"}}
	if ref.digest == "" {
		// No digest to name yet: say which tag was refused.
		v.Image.Name = t.image + ":" + ref.tag
	}
	return &deniedError{v: v}
}

// resolve fetches the manifest ref names. With a tag TTL
// (cache.tagTTL), a tag's resolution is shared by the requests that want
// it at the same time and reused for the TTL, so a rollout's burst of
// pulls costs one upstream lookup while a moved tag is seen within the
// TTL; the manifest itself comes from the cache of manifests by digest.
// A tag pullgate has resolved before (in the last staleTagTTL) is looked
// up again with a HEAD, which usually finds the digest it knows; a tag it
// has not is fetched with one GET (the same Docker Hub pull quota as a
// HEAD and a GET by digest, one round trip less).
func (s *Server) resolve(ctx context.Context, t target, ref reference) (*fetched, error) {
	if ref.digest != "" || s.tagDigests == nil {
		return s.resolveUpstream(ctx, t, ref)
	}
	key := t.registry + "|" + t.repo + "|" + ref.tag
	known, seen := s.tagDigests.Get(key)
	if seen && time.Now().Before(known.fresh) {
		if m, err := s.fetchDigest(ctx, t, known.dgst); err == nil {
			return m, nil
		}
		// Gone upstream, or the fetch failed: resolve the tag afresh.
	}
	m, _, err := s.tagFetch.Do(ctx, key, func(ctx context.Context) (*fetched, error) {
		var m *fetched
		var err error
		if seen {
			m, err = s.resolveUpstream(ctx, t, ref)
		} else {
			if m, err = s.fetchManifest(ctx, t, ref.tag, ""); err != nil && isStatus(err, http.StatusNotFound) {
				err = manifestUnknown(t, ref, err)
			}
		}
		if err != nil {
			return nil, err
		}
		s.cacheManifest(t, m)
		s.tagDigests.Set(key, tagDigest{dgst: m.digest, fresh: time.Now().Add(s.cfg.Cache.TagTTL)}, max(s.cfg.Cache.TagTTL, staleTagTTL))
		return m, nil
	})
	return m, err
}

// staleTagTTL is how long a tag's last digest is remembered after its
// TTL ran out, to choose how to resolve it again.
const staleTagTTL = 24 * time.Hour

// tagDigest is what a tag resolved to, and until when that is fresh.
type tagDigest struct {
	dgst  digest.Digest
	fresh time.Time
}

// resolveUpstream fetches the manifest ref names, once: a tag is looked
// up with a HEAD (free of Docker Hub pull quota) and the manifest is then
// fetched by digest; the digest served is always computed over the bytes
// fetched.
func (s *Server) resolveUpstream(ctx context.Context, t target, ref reference) (*fetched, error) {
	up := s.upstreams[t.registry]
	want := ref.digest
	if want == "" {
		head, err := up.Manifest(ctx, http.MethodHead, t.repo, ref.tag, s.maxManifest())
		switch {
		case err == nil:
			if d, perr := digest.Parse(head.Digest); perr == nil && d.Algorithm() == digest.SHA256 {
				want = d
			}
		case isStatus(err, http.StatusNotFound):
			return nil, manifestUnknown(t, ref, err)
		default:
			var se *upstream.StatusError
			if !errors.As(err, &se) || se.StatusCode != http.StatusMethodNotAllowed && se.StatusCode != http.StatusBadRequest {
				return nil, err
			}
			// Some registries refuse HEAD: fall through to a GET by tag.
		}
	}
	if want == "" {
		// No usable digest hint: GET by tag and hash what arrives.
		m, err := s.fetchManifest(ctx, t, ref.tag, "")
		if err != nil && isStatus(err, http.StatusNotFound) {
			return nil, manifestUnknown(t, ref, err)
		}
		return m, err
	}
	m, err := s.fetchDigest(ctx, t, want)
	var dme *digestMismatchError
	if ref.tag != "" && (isStatus(err, http.StatusNotFound) || errors.As(err, &dme)) {
		// The upstream's digest header for the tag was only a hint, and a
		// wrong one: GET the tag and hash what arrives.
		s.log.WarnContext(ctx, "upstream digest header for a tag is wrong; fetching the tag", "image", t.image, "tag", ref.tag, "hint", want.String(), "error", err)
		m, err = s.fetchManifest(ctx, t, ref.tag, "")
	}
	if err != nil && isStatus(err, http.StatusNotFound) {
		return nil, manifestUnknown(t, ref, err)
	}
	return m, err
}

func manifestKey(t target, dgst digest.Digest) string {
	return t.registry + "|" + t.repo + "|" + dgst.String()
}

// cacheManifest adds m to the cache of manifests by digest. The cost
// approximates the memory m holds: the bytes, the parsed document and
// its descriptors.
func (s *Server) cacheManifest(t target, m *fetched) {
	key := manifestKey(t, m.digest)
	if _, ok := s.manifests.Get(key); ok {
		return
	}
	s.manifests.Set(key, m, m.memory(), time.Hour)
}

// fetchDigest returns manifest want of t: cached, or fetched once for
// all concurrent callers and hashed.
func (s *Server) fetchDigest(ctx context.Context, t target, want digest.Digest) (*fetched, error) {
	key := manifestKey(t, want)
	if m, ok := s.manifests.Get(key); ok {
		return m, nil
	}
	m, _, err := s.fetch.Do(ctx, key, func(ctx context.Context) (*fetched, error) {
		if m, ok := s.manifests.Get(key); ok {
			return m, nil // a flight that ended between our Get and Do fetched it
		}
		m, err := s.fetchManifest(ctx, t, want.String(), want)
		if err != nil {
			return nil, err
		}
		s.cacheManifest(t, m)
		return m, nil
	})
	return m, err
}

// fetchManifest GETs reference and hashes the body. When want is set
// the body must hash to it.
func (s *Server) fetchManifest(ctx context.Context, t target, ref string, want digest.Digest) (*fetched, error) {
	up := s.upstreams[t.registry]
	resp, err := up.Manifest(ctx, http.MethodGet, t.repo, ref, s.maxManifest())
	if err != nil {
		return nil, err
	}
	got := digest.SHA256.FromBytes(resp.Body)
	if want != "" && got != want {
		return nil, &digestMismatchError{registry: t.registry, want: want, got: got}
	}
	doc, mt, err := parseManifest(resp.Body, resp.MediaType)
	if err != nil {
		var oe *ociError
		if errors.As(err, &oe) {
			// The upstream's fault, not the client's: 502.
			return nil, &ociError{code: oe.code, status: http.StatusBadGateway, message: fmt.Sprintf("%s@%s: %s", t.image, got, oe.message)}
		}
		return nil, err
	}
	body := resp.Body
	if cap(body) > len(body)+len(body)/8 {
		body = bytes.Clone(body) // cached: do not keep io.ReadAll's spare room
	}
	return &fetched{body: body, mediaType: mt, digest: got, doc: doc}, nil
}

func (s *Server) maxManifest() int64 {
	if n := s.cfg.Limits.MaxManifestBytes; n > 0 {
		return n
	}
	return 4 << 20
}

func manifestUnknown(t target, ref reference, err error) error {
	return &ociError{code: "MANIFEST_UNKNOWN", message: fmt.Sprintf("manifest %s of %s not found upstream (%v)", ref, t.image, err)}
}

func isStatus(err error, code int) bool {
	var se *upstream.StatusError
	return errors.As(err, &se) && se.StatusCode == code
}

// decide returns what to do with manifest m of t: its verdict (cached,
// or verified once for all concurrent requests) and whether to serve it.
func (s *Server) decide(ctx context.Context, t target, ref reference, m *fetched) (decision, error) {
	rule, err := s.cfg.Match(t.image)
	if err != nil && !errors.Is(err, policy.ErrNoRule) {
		return decision{}, fmt.Errorf("match policy for %s: %w", t.image, err)
	}
	if errors.Is(err, policy.ErrNoRule) {
		rule = nil
	}
	if subject, ok := signatureSubject(ref, m.doc, m.mediaType); ok {
		// Signature material is served when the image it signs is.
		sv, err := s.verdict(ctx, t, rule, subject)
		if err != nil {
			return decision{}, err
		}
		v := &verifier.Verdict{
			Image:   verifier.Image{Name: t.image, Digest: m.digest},
			Policy:  sv.Policy,
			Allowed: sv.Allowed,
		}
		if !sv.Allowed {
			v.Reasons = []string{fmt.Sprintf("signature material of %s, which is denied: %s", subject, denialMessage(sv))}
		}
		return decision{verdict: v, serve: sv.Allowed || auditing(rule)}, nil
	}
	v, err := s.verdict(ctx, t, rule, m.digest)
	if err != nil {
		return decision{}, err
	}
	return decision{verdict: v, serve: v.Allowed || auditing(rule), covers: v.Allowed && rule != nil}, nil
}

func auditing(rule *policy.Rule) bool { return rule != nil && rule.Mode == policy.ModeAudit }

// verdictKey is where the verdict for image at dgst is cached: per policy
// generation and per trust generation (the trusted roots the verifier
// holds now), so neither a changed policy nor a reloaded or rotated
// trusted root ever reuses an old verdict.
func (s *Server) verdictKey(image string, dgst digest.Digest) string {
	return "v|" + s.cfg.Generation + "|" + s.trustGeneration() + "|" + image + "|" + dgst.String()
}

// trustGeneration is the verifier's trust generation, or "" for a
// verifier without trusted roots.
func (s *Server) trustGeneration() string {
	if g, ok := s.verifier.(interface{ Generation() string }); ok {
		return g.Generation()
	}
	return ""
}

// verdict returns the verdict for image t.image at dgst: from the cache,
// or by verifying once for all concurrent callers. Transient failures are
// returned as errors and never cached.
func (s *Server) verdict(ctx context.Context, t target, rule *policy.Rule, dgst digest.Digest) (*verifier.Verdict, error) {
	key := s.verdictKey(t.image, dgst)
	if v, ok := s.cachedVerdict(key, t, rule, dgst); ok {
		return v, nil
	}
	v, _, err := s.verify.Do(ctx, key, func(ctx context.Context) (*verifier.Verdict, error) {
		if v, ok := s.cachedVerdict(key, t, rule, dgst); ok {
			return v, nil
		}
		img := verifier.Image{Name: t.image, Digest: dgst}
		start := time.Now()
		var v *verifier.Verdict
		if rule == nil {
			v = s.unmatched(img)
		} else {
			ctx, span := s.tracer.Start(ctx, "verify")
			var err error
			v, err = s.verifier.Verify(ctx, source{up: s.upstreams[t.registry], repo: t.repo}, img, rule)
			span.End()
			if err != nil {
				s.logDecision(ctx, img, rule, nil, err, time.Since(start))
				return nil, &unverifiableError{image: img, err: err}
			}
			if v == nil {
				return nil, &unverifiableError{image: img, err: errors.New("verifier returned no verdict")}
			}
		}
		s.logDecision(ctx, img, rule, v, nil, time.Since(start))
		ttl := s.cfg.Cache.VerdictTTL
		if !v.Allowed {
			ttl = s.cfg.Cache.DenyTTL
		}
		if ttl <= 0 {
			ttl = time.Minute
		}
		s.storeVerdict(key, v, ttl)
		return v, nil
	})
	return v, err
}

// cachedVerdict returns the verdict cached under key for image t.image
// at dgst under rule. Denials are cached whole (their reasons are the
// answer); an allow is cached as a nil entry, 32 bytes, and rebuilt here
// without its evidence, which only the verification that made it (and
// its decision log line) carries.
func (s *Server) cachedVerdict(key string, t target, rule *policy.Rule, dgst digest.Digest) (*verifier.Verdict, bool) {
	v, ok := s.verdicts.Get(key)
	switch {
	case !ok:
		return nil, false
	case v != nil:
		return v, true
	}
	name := ""
	if rule != nil {
		name = rule.Name
	}
	return &verifier.Verdict{Image: verifier.Image{Name: t.image, Digest: dgst}, Policy: name, Allowed: true}, true
}

// storeVerdict caches v under key for ttl (see cachedVerdict).
func (s *Server) storeVerdict(key string, v *verifier.Verdict, ttl time.Duration) {
	if v.Allowed {
		s.verdicts.Set(key, nil, ttl)
		return
	}
	s.verdicts.Set(key, v, ttl)
}

// unmatched is the verdict for an image no rule names.
func (s *Server) unmatched(img verifier.Image) *verifier.Verdict {
	if s.cfg.Unmatched == policy.ActionAllow {
		return &verifier.Verdict{Image: img, Allowed: true}
	}
	return &verifier.Verdict{Image: img, Reasons: []string{"no policy matches " + img.Name + " and unmatched is deny"}}
}

// grant records what serving m makes servable: the blobs of an image
// manifest, and (for an index that verified) its child manifests.
func (s *Server) grant(t target, m *fetched, d decision) {
	ttl := s.cfg.Cache.VerdictTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	// Every serve sets them again (a map write each): what the cache
	// dropped comes back, and what is pulled stays.
	if isIndexType(m.mediaType) {
		if !d.covers {
			return
		}
		for _, child := range m.doc.Manifests {
			if !isManifestType(child.MediaType) && child.MediaType != "" {
				continue
			}
			s.verdicts.Set(s.verdictKey(t.image, child.Digest), nil, ttl) // allowed (see cachedVerdict)
		}
		return
	}
	if m.doc.Config != nil {
		s.grants.Set(s.blobKey(t.image, m.doc.Config.Digest), struct{}{}, ttl)
	}
	for _, l := range m.doc.Layers {
		s.grants.Set(s.blobKey(t.image, l.Digest), struct{}{}, ttl)
	}
}

func (s *Server) blobKey(image string, dgst digest.Digest) string {
	return "b|" + s.cfg.Generation + "|" + image + "|" + dgst.String()
}

// logDecision writes the one structured line per verification that is
// pullgate's audit trail: image, digest, policy, verdict, duration, and
// for what verified the signers and layouts, the attestations that met
// each requirement, and the evidence behind each (certificate identity
// and issuer, transparency-log index and time, timestamp, trusted root).
func (s *Server) logDecision(ctx context.Context, img verifier.Image, rule *policy.Rule, v *verifier.Verdict, err error, took time.Duration) {
	attrs := []any{
		"image", img.Name,
		"digest", img.Digest.String(),
		"duration", took.Round(time.Microsecond).String(),
	}
	policyName, mode := "", ""
	if rule != nil {
		policyName, mode = rule.Name, string(rule.Mode)
	}
	attrs = append(attrs, "policy", policyName)
	if g := s.trustGeneration(); g != "" {
		attrs = append(attrs, "trustGeneration", g[:min(12, len(g))])
	}
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "decision", append(attrs, "verdict", "error", "error", err.Error())...)
		return
	case rule == nil && v.Allowed:
		attrs = append(attrs, "verdict", "allow", "reason", "no policy matches; unmatched: allow serves it unverified")
	case v.Allowed:
		attrs = append(attrs, "verdict", "allow")
		attrs = appendEvidence(attrs, v.Evidence)
	case mode == string(policy.ModeAudit):
		attrs = append(attrs, "verdict", "deny", "mode", "audit", "action", "served anyway (audit mode)", "reasons", v.Reasons)
		attrs = appendEvidence(attrs, v.Evidence)
		s.log.WarnContext(ctx, "decision", attrs...)
		return
	default:
		attrs = append(attrs, "verdict", "deny", "reasons", v.Reasons)
		attrs = appendEvidence(attrs, v.Evidence)
	}
	s.log.InfoContext(ctx, "decision", attrs...)
}

// appendEvidence adds the signers and layouts of the signatures, the
// attestations per requirement, and the evidence of each.
func appendEvidence(attrs []any, evidence []verifier.Evidence) []any {
	signers := []string{}
	layouts := []string{}
	var attestations []string
	items := make([]map[string]any, 0, len(evidence))
	for _, e := range evidence {
		item := map[string]any{"signer": e.Signer, "layout": string(e.Layout)}
		if e.Artifact != "" {
			item["artifact"] = e.Artifact.String()
		}
		if e.Requirement != "" {
			item["requirement"] = e.Requirement
			attestations = append(attestations, fmt.Sprintf("%s by %q via %s %s", e.Requirement, e.Signer, e.Layout, e.Artifact))
		} else {
			signers = append(signers, e.Signer)
			layouts = append(layouts, string(e.Layout))
		}
		if e.PredicateType != "" {
			item["predicateType"] = e.PredicateType
		}
		if e.Condition != "" {
			item["condition"] = e.Condition
		}
		if e.Identity != "" {
			item["identity"], item["issuer"] = e.Identity, e.Issuer
		}
		if e.LogIndex >= 0 && !e.IntegratedTime.IsZero() {
			item["logIndex"] = e.LogIndex
			item["integratedTime"] = e.IntegratedTime.UTC().Format(time.RFC3339)
		} else if e.LogIndex >= 0 {
			item["logIndex"] = e.LogIndex
		}
		if !e.SignedTimestamp.IsZero() {
			item["signedTimestamp"] = e.SignedTimestamp.UTC().Format(time.RFC3339)
		}
		if e.TrustRoot != "" {
			item["trustRoot"] = e.TrustRoot
		}
		items = append(items, item)
	}
	attrs = append(attrs, "signers", signers, "layouts", layouts)
	if len(attestations) > 0 {
		attrs = append(attrs, "attestations", attestations)
	}
	if len(items) > 0 {
		attrs = append(attrs, "evidence", items)
	}
	return attrs
}
