package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/proxy/upstream"
)

// listable reports whether names under t may be listed: the image is
// governed by a rule, or unmatched images are allowed. Listings serve no
// content, but an image pullgate would never serve has nothing to list.
func (s *Server) listable(t target) error {
	_, err := s.cfg.Match(t.image)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, policy.ErrNoRule) && s.cfg.Unmatched == policy.ActionAllow:
		return nil
	case errors.Is(err, policy.ErrNoRule):
		return newError("DENIED", "no policy matches %s and unmatched is deny", t.image)
	default:
		return fmt.Errorf("match policy for %s: %w", t.image, err)
	}
}

// tags serves GET /v2/<name>/tags/list with the spec's n and last
// pagination, sorted lexically whatever order the upstream uses.
func (s *Server) tags(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	if err := s.listable(t); err != nil {
		return err
	}
	q := r.URL.Query()
	n := -1
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return newError("PAGINATION_NUMBER_INVALID", "invalid n %q", clip(v))
		}
	}
	last := q.Get("last")
	all, err := s.upstreams[t.registry].Tags(r.Context(), t.repo, 100, 16<<20)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return &ociError{code: "NAME_UNKNOWN", message: fmt.Sprintf("repository %s not found upstream (%v)", t.image, err)}
		}
		return err
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	more := false
	if n >= 0 && n < len(all) {
		all, more = all[:n], true
	}
	if all == nil {
		all = []string{}
	}
	if more && len(all) > 0 {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {all[len(all)-1]}}
		if ns := q.Get("ns"); ns != "" {
			next.Set("ns", ns)
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
	}
	body, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{mux.Vars(r)["name"], all})
	if err != nil {
		return err
	}
	writeJSON(w, r, t, "application/json", body)
	return nil
}

// referrers serves GET /v2/<name>/referrers/<digest>. pullgate always
// supports the API: it passes the upstream's answer through, or, for
// upstreams without the API, answers from the referrers tag schema
// (sha256-<hex>), and with an empty index when there is nothing.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.target(r)
	if err != nil {
		return err
	}
	dgst, err := parseDigest(mux.Vars(r)["digest"])
	if err != nil {
		return err
	}
	if err := s.listable(t); err != nil {
		return err
	}
	up := s.upstreams[t.registry]
	body, err := up.Referrers(ctx, t.repo, dgst, s.maxManifest())
	if errors.Is(err, upstream.ErrReferrersUnsupported) {
		body, err = s.referrersTag(ctx, t, dgst)
	}
	if err != nil {
		return err
	}
	if at := r.URL.Query().Get("artifactType"); at != "" {
		body, err = filterReferrers(body, at)
		if err != nil {
			return err
		}
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, r, t, mtOCIIndex, body)
	return nil
}

// referrersTag reads the referrers tag schema index for dgst, or returns
// an empty index when there is none.
func (s *Server) referrersTag(ctx context.Context, t target, dgst digest.Digest) ([]byte, error) {
	tag := "sha256-" + dgst.Encoded()
	m, err := s.upstreams[t.registry].Manifest(ctx, http.MethodGet, t.repo, tag, s.maxManifest())
	switch {
	case isStatus(err, http.StatusNotFound):
		return []byte(emptyIndexBytes), nil
	case err != nil:
		return nil, err
	}
	if _, mt, perr := parseManifest(m.Body, m.MediaType); perr != nil || !isIndexType(mt) {
		s.log.WarnContext(ctx, "referrers tag does not hold an index; answering with no referrers", "image", t.image, "tag", tag)
		return []byte(emptyIndexBytes), nil
	}
	return m.Body, nil
}

// filterReferrers keeps the descriptors of an index whose artifactType is
// at. The result is a new index (referrer lists are not verified
// content, so re-encoding them is fine).
func filterReferrers(body []byte, at string) ([]byte, error) {
	var idx struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: "upstream referrers index is not valid JSON"}
	}
	kept := []json.RawMessage{}
	for _, raw := range idx.Manifests {
		var d descriptor
		if json.Unmarshal(raw, &d) == nil && d.ArtifactType == at {
			kept = append(kept, raw)
		}
	}
	idx.SchemaVersion, idx.MediaType, idx.Manifests = 2, mtOCIIndex, kept
	return json.Marshal(idx)
}

func writeJSON(w http.ResponseWriter, r *http.Request, t target, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if t.ns != "" {
		h.Set("OCI-Namespace", t.ns)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
