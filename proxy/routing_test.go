package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRoutingOnlyConfigured: ns values and path prefixes that name no
// configured upstream are refused without contacting anything; the only
// host ever contacted is the configured endpoint.
func TestRoutingOnlyConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()

	refused := []struct {
		name string
		path string
	}{
		{"unknown ns", "/v2/signed/app/manifests/v1?ns=evil.example.com"},
		{"endpoint host as ns", "/v2/signed/app/manifests/v1?ns=" + e.up.host},
		{"ns with port 443 of unknown", "/v2/signed/app/manifests/v1?ns=evil.example.com:443"},
		{"unknown path prefix", "/v2/evil.example.com/signed/app/manifests/v1"},
		{"endpoint host as path prefix", "/v2/" + e.up.host + "/signed/app/manifests/v1"},
		{"localhost prefix", "/v2/localhost/signed/app/manifests/v1"},
		{"unknown prefix blob", "/v2/evil.example.com/signed/app/blobs/" + f.digest.String()},
		{"unknown ns tags", "/v2/signed/app/tags/list?ns=169.254.169.254"},
		{"unknown ns referrers", "/v2/signed/app/referrers/" + f.digest.String() + "?ns=metadata.internal"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			oe := wantError(t, e.get(t, tt.path), http.StatusNotFound, "NAME_UNKNOWN")
			if !strings.Contains(oe.Message, "not an upstream") {
				t.Errorf("message %q does not say why", oe.Message)
			}
		})
	}
	if n := e.up.total(); n != 0 {
		t.Errorf("upstream requests = %d, want 0", n)
	}
	if h := e.hosts.hosts(); len(h) != 0 {
		t.Errorf("hosts contacted: %v, want none", h)
	}

	// The forms that name the configured registry all work.
	for _, p := range []string{
		"/v2/signed/app/manifests/v1?ns=reg.test",
		"/v2/signed/app/manifests/v1?ns=REG.test",
		"/v2/signed/app/manifests/v1?ns=reg.test:443",
		"/v2/reg.test/signed/app/manifests/v1",
		"/v2/signed/app/manifests/v1", // defaultRegistry
	} {
		r := e.get(t, p)
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("Docker-Content-Digest"); got != f.digest.String() {
			t.Errorf("%s: digest %s, want %s", p, got, f.digest)
		}
	}
	if diff := cmp.Diff([]string{"http://" + e.up.host}, keys(e.hosts.hosts())); diff != "" {
		t.Errorf("hosts contacted (-want +got):\n%s", diff)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDockerHub: docker.io is normalised (aliases, library/) and reaches
// its configured endpoint.
func TestDockerHub(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "library/nginx", "1.27")
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()
	for _, p := range []string{
		"/v2/nginx/manifests/1.27?ns=docker.io",
		"/v2/library/nginx/manifests/1.27?ns=docker.io",
		"/v2/nginx/manifests/1.27?ns=index.docker.io",
		"/v2/nginx/manifests/1.27?ns=registry-1.docker.io",
		"/v2/docker.io/nginx/manifests/1.27",
		"/v2/index.docker.io/library/nginx/manifests/1.27",
	} {
		r := e.get(t, p)
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("Docker-Content-Digest"); got != f.digest.String() {
			t.Errorf("%s: digest %s, want %s", p, got, f.digest)
		}
	}
	if n := e.up.count(http.MethodHead, "/v2/library/nginx/manifests/1.27"); n != 6 {
		t.Errorf("upstream HEAD /v2/library/nginx/manifests/1.27 = %d, want 6", n)
	}
	if n := e.up.countWhere(func(k string) bool { return strings.Contains(k, " /v2/nginx/") }); n != 0 {
		t.Errorf("upstream saw %d requests for /v2/nginx/ (not normalised)", n)
	}
	d := e.logs.lines(t, "decision")
	if len(d) != 1 || d[0]["image"] != "docker.io/library/nginx" {
		t.Errorf("decision lines = %v, want one for docker.io/library/nginx", d)
	}
	// Blobs follow under the short name too.
	wantStatus(t, e.get(t, "/v2/nginx/blobs/"+blobsOf(t, f)[1].String()+"?ns=docker.io"), http.StatusOK)
}

// TestMalformed: bad input is a 400 or 404 with an OCI body, never a 500,
// never cached, and never reaches the upstream or the verifier.
func TestMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	e.up.resetCounts()
	long := strings.Repeat("a", 300)
	dg := f.digest.String()
	tests := []struct {
		name   string
		path   string
		status int
		code   string
	}{
		{"digest bad hex", "/v2/signed/app/manifests/sha256:baddigeststring?ns=reg.test", 400, "DIGEST_INVALID"},
		{"digest upper hex", "/v2/signed/app/manifests/sha256:" + strings.ToUpper(f.digest.Hex) + "?ns=reg.test", 400, "DIGEST_INVALID"},
		{"digest sha512", "/v2/signed/app/manifests/sha512:" + strings.Repeat("ab", 64) + "?ns=reg.test", 400, "DIGEST_INVALID"},
		{"digest md5", "/v2/signed/app/manifests/md5:x?ns=reg.test", 400, "DIGEST_INVALID"},
		{"digest empty hex", "/v2/signed/app/manifests/sha256:?ns=reg.test", 400, "DIGEST_INVALID"},
		{"blob digest", "/v2/signed/app/blobs/sha256:baddigeststring?ns=reg.test", 400, "DIGEST_INVALID"},
		{"blob md5", "/v2/signed/app/blobs/md5:x?ns=reg.test", 400, "DIGEST_INVALID"},
		{"blob not a digest", "/v2/signed/app/blobs/latest?ns=reg.test", 400, "DIGEST_INVALID"},
		{"referrers digest", "/v2/signed/app/referrers/sha512:abc?ns=reg.test", 400, "DIGEST_INVALID"},
		{"tag leading dash", "/v2/signed/app/manifests/-bad?ns=reg.test", 400, "TAG_INVALID"},
		{"tag leading dot", "/v2/signed/app/manifests/.bad?ns=reg.test", 400, "TAG_INVALID"},
		{"tag 200 chars", "/v2/signed/app/manifests/" + strings.Repeat("t", 200) + "?ns=reg.test", 400, "TAG_INVALID"},
		{"tag 129 chars", "/v2/signed/app/manifests/" + strings.Repeat("t", 129) + "?ns=reg.test", 400, "TAG_INVALID"},
		{"name upper case", "/v2/signed/App/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name dot dot", "/v2/signed/../app/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name dot dot prefix", "/v2/reg.test/../app/manifests/v1", 400, "NAME_INVALID"},
		{"name double slash", "/v2/signed//app/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name a//b", "/v2/a//b/manifests/v1", 400, "NAME_INVALID"},
		{"name trailing slash", "/v2/signed/app//manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name 300 chars", "/v2/" + long + "/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name 250 chars plus registry", "/v2/" + strings.Repeat("b", 250) + "/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name leading dash", "/v2/-app/manifests/v1?ns=reg.test", 400, "NAME_INVALID"},
		{"name only registry", "/v2/reg.test//manifests/v1", 400, "NAME_INVALID"},
		{"name blob", "/v2/Signed/app/blobs/" + dg + "?ns=reg.test", 400, "NAME_INVALID"},
		{"name tags", "/v2/signed/App/tags/list?ns=reg.test", 400, "NAME_INVALID"},
		{"ns with space", "/v2/signed/app/manifests/v1?ns=reg%20test", 400, "NAME_INVALID"},
		{"ns with scheme", "/v2/signed/app/manifests/v1?ns=http://reg.test", 400, "NAME_INVALID"},
		{"ns with path", "/v2/signed/app/manifests/v1?ns=reg.test/x", 400, "NAME_INVALID"},
		{"ns dot dot", "/v2/signed/app/manifests/v1?ns=..", 400, "NAME_INVALID"},
		{"ns leading dash", "/v2/signed/app/manifests/v1?ns=-reg.test", 400, "NAME_INVALID"},
		{"ns userinfo", "/v2/signed/app/manifests/v1?ns=user@reg.test", 400, "NAME_INVALID"},
		{"ns long", "/v2/signed/app/manifests/v1?ns=" + long, 404, "NAME_UNKNOWN"},
		{"path prefix bad host", "/v2/re_g.test:x/app/manifests/v1", 400, "NAME_INVALID"},
		{"tags n letters", "/v2/signed/app/tags/list?ns=reg.test&n=abc", 400, "PAGINATION_NUMBER_INVALID"},
		{"tags n negative", "/v2/signed/app/tags/list?ns=reg.test&n=-1", 400, "PAGINATION_NUMBER_INVALID"},
		{"tags n huge", "/v2/signed/app/tags/list?ns=reg.test&n=99999999999999999999999", 400, "PAGINATION_NUMBER_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 { // the second answer is not a cached one
				r := e.get(t, tt.path)
				if r.status >= 500 {
					t.Fatalf("attempt %d: status %d: %s", i, r.status, r.body)
				}
				wantError(t, r, tt.status, tt.code)
			}
		})
	}
	if n := e.up.total(); n != 0 {
		t.Errorf("upstream requests = %d, want 0", n)
	}
	if n := e.verifies.Load(); n != 0 {
		t.Errorf("verifications = %d, want 0", n)
	}
	// The valid form of the same request still works.
	wantStatus(t, e.get(t, manifestPath("signed/app", "v1")), http.StatusOK)
}

// TestEndpoints: the API version check, writes and unknown endpoints.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.up.resetCounts()
	dg := f.digest.String()
	tests := []struct {
		method string
		path   string
		status int
		code   string // "" for success
	}{
		{http.MethodGet, "/v2/", 200, ""},
		{http.MethodHead, "/v2/", 200, ""},
		{http.MethodGet, "/v2", 200, ""},
		{http.MethodPut, "/v2/signed/app/manifests/v1", 405, "UNSUPPORTED"},
		{http.MethodDelete, "/v2/signed/app/manifests/" + dg, 405, "UNSUPPORTED"},
		{http.MethodPost, "/v2/signed/app/blobs/uploads/", 405, "UNSUPPORTED"},
		{http.MethodPatch, "/v2/signed/app/blobs/uploads/1234", 405, "UNSUPPORTED"},
		{http.MethodPut, "/v2/signed/app/blobs/uploads/1234?digest=" + dg, 405, "UNSUPPORTED"},
		{http.MethodDelete, "/v2/signed/app/blobs/" + dg, 405, "UNSUPPORTED"},
		{http.MethodPost, "/v2/signed/app/blobs/uploads/?mount=" + dg + "&from=other", 405, "UNSUPPORTED"},
		{http.MethodPut, "/v2/signed/app/manifests/v1?ns=reg.test", 405, "UNSUPPORTED"},
		{http.MethodGet, "/v2/_catalog", 404, "UNSUPPORTED"},
		{http.MethodGet, "/v2/signed/app/uploads/x", 404, "UNSUPPORTED"},
		{http.MethodGet, "/", 404, "UNSUPPORTED"},
		{http.MethodGet, "/v1/search", 404, "UNSUPPORTED"},
	}
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.path)
		if r.header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
			t.Errorf("%s %s: no Docker-Distribution-API-Version", tt.method, tt.path)
		}
		if tt.code == "" {
			wantStatus(t, r, tt.status)
			continue
		}
		wantError(t, r, tt.status, tt.code)
	}
	if n := e.up.total(); n != 0 {
		t.Errorf("upstream requests = %d, want 0", n)
	}
}
