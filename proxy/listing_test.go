package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTagsList: the full upstream list (followed across Link pages),
// sorted and deduplicated, paginated with n and last.
func TestTagsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.push(t, "signed/app", "v1")
	e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/signed/app/tags/list" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("last") {
		case "":
			w.Header().Set("Link", `</v2/signed/app/tags/list?n=3&last=mid>; rel="next"`)
			_, _ = w.Write([]byte(`{"name":"signed/app","tags":["zeta","alpha","mid"]}`))
		case "mid":
			w.Header().Set("Link", `<http://`+e.up.host+`/v2/signed/app/tags/list?n=3&last=omega>; rel="next"`)
			_, _ = w.Write([]byte(`{"name":"signed/app","tags":["beta","alpha","1.0"]}`))
		default:
			_, _ = w.Write([]byte(`{"name":"signed/app","tags":["omega"]}`))
		}
		return true
	})
	type tagList struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	tests := []struct {
		name     string
		path     string
		want     tagList
		wantLink string
	}{
		{"all", "/v2/signed/app/tags/list?ns=reg.test",
			tagList{"signed/app", []string{"1.0", "alpha", "beta", "mid", "omega", "zeta"}}, ""},
		{"first page", "/v2/signed/app/tags/list?ns=reg.test&n=2",
			tagList{"signed/app", []string{"1.0", "alpha"}}, `</v2/signed/app/tags/list?last=alpha&n=2&ns=reg.test>; rel="next"`},
		{"next page", "/v2/signed/app/tags/list?ns=reg.test&n=2&last=alpha",
			tagList{"signed/app", []string{"beta", "mid"}}, `</v2/signed/app/tags/list?last=mid&n=2&ns=reg.test>; rel="next"`},
		{"last page", "/v2/signed/app/tags/list?ns=reg.test&n=2&last=mid",
			tagList{"signed/app", []string{"omega", "zeta"}}, ""},
		{"last between tags", "/v2/signed/app/tags/list?ns=reg.test&last=b",
			tagList{"signed/app", []string{"beta", "mid", "omega", "zeta"}}, ""},
		{"past the end", "/v2/signed/app/tags/list?ns=reg.test&last=zz",
			tagList{"signed/app", []string{}}, ""},
		{"n zero", "/v2/signed/app/tags/list?ns=reg.test&n=0",
			tagList{"signed/app", []string{}}, ""},
		{"path prefix", "/v2/reg.test/signed/app/tags/list?n=5",
			tagList{"reg.test/signed/app", []string{"1.0", "alpha", "beta", "mid", "omega"}}, `</v2/reg.test/signed/app/tags/list?last=omega&n=5>; rel="next"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(t, tt.path)
			wantStatus(t, r, http.StatusOK)
			var got tagList
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if l := r.header.Get("Link"); l != tt.wantLink {
				t.Errorf("Link = %q, want %q", l, tt.wantLink)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}

	// A Link to another host is not followed.
	e.up.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/signed/app/tags/list" {
			return false
		}
		w.Header().Set("Link", `<http://169.254.169.254/v2/x/tags/list>; rel="next"`)
		_, _ = w.Write([]byte(`{"tags":["a"]}`))
		return true
	})
	if r := e.get(t, "/v2/signed/app/tags/list?ns=reg.test"); r.status < 500 {
		t.Errorf("foreign Link: status %d, want 5xx", r.status)
	}
	if h := e.hosts.hosts(); len(h) != 1 {
		t.Errorf("hosts contacted: %v", h)
	}

	// Listing an image no policy names (unmatched: deny) is refused.
	e.up.setFault(nil)
	e.push(t, "other/app", "v1")
	wantError(t, e.get(t, "/v2/other/app/tags/list?ns=reg.test"), http.StatusForbidden, "DENIED")
	wantError(t, e.get(t, "/v2/nothere/tags/list?ns=reg.test"), http.StatusForbidden, "DENIED")
	e.push(t, "signed/empty", "v1")
	wantError(t, e.get(t, "/v2/signed/missing/tags/list?ns=reg.test"), http.StatusNotFound, "NAME_UNKNOWN")
}

// TestReferrers: the upstream API passed through, the referrers tag
// synthesised into the API, an empty index when there are none, and the
// artifactType filter.
func TestReferrers(t *testing.T) {
	t.Parallel()
	for _, referrers := range []bool{true, false} {
		name := "tag fallback"
		if referrers {
			name = "API"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envConfig{referrers: referrers})
			f := e.push(t, "signed/app", "v1")
			e.signBundle(t, f, e.key)
			unsigned := e.push(t, "signed/app", "v2")
			e.up.resetCounts()
			p := "/v2/signed/app/referrers/" + f.digest.String() + "?ns=reg.test"

			r := e.get(t, p)
			wantStatus(t, r, http.StatusOK)
			if r.header.Get("OCI-Filters-Applied") != "" {
				t.Errorf("unfiltered answer has OCI-Filters-Applied")
			}
			idx := decodeIndex(t, r.body)
			if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 1 {
				t.Fatalf("referrers index = %s", r.body)
			}
			at := idx.Manifests[0].ArtifactType // ggcr: the config media type
			if referrers {
				if n := e.up.count(http.MethodGet, "/v2/signed/app/referrers/"+f.digest.String()); n != 1 {
					t.Errorf("upstream referrers requests = %d, want 1", n)
				}
			} else if n := e.up.count(http.MethodGet, "/v2/signed/app/manifests/sha256-"+f.digest.Hex); n != 1 {
				t.Errorf("upstream referrers tag requests = %d, want 1", n)
			}

			filtered := e.get(t, p+"&artifactType="+url.QueryEscape(at))
			wantStatus(t, filtered, http.StatusOK)
			if filtered.header.Get("OCI-Filters-Applied") != "artifactType" || len(decodeIndex(t, filtered.body).Manifests) != 1 {
				t.Errorf("filter %q: %s %v", at, filtered.body, filtered.header)
			}
			none := e.get(t, p+"&artifactType=application/example")
			wantStatus(t, none, http.StatusOK)
			if none.header.Get("OCI-Filters-Applied") != "artifactType" || len(decodeIndex(t, none.body).Manifests) != 0 {
				t.Errorf("filter out: %s %v", none.body, none.header)
			}

			empty := e.get(t, "/v2/signed/app/referrers/"+unsigned.digest.String()+"?ns=reg.test")
			wantStatus(t, empty, http.StatusOK)
			if ct := empty.header.Get("Content-Type"); ct != "application/vnd.oci.image.index.v1+json" {
				t.Errorf("empty referrers Content-Type = %q", ct)
			}
			if idx := decodeIndex(t, empty.body); len(idx.Manifests) != 0 || idx.MediaType != "application/vnd.oci.image.index.v1+json" {
				t.Errorf("empty referrers = %s", empty.body)
			}
		})
	}
}

func TestFilterReferrers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		at      string
		want    string
		wantErr bool
	}{
		{
			name: "keeps matching, raw",
			body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
				`{"mediaType":"m","digest":"sha256:aa","size":1,"artifactType":"a","annotations":{"k":"v"}},` +
				`{"mediaType":"m","digest":"sha256:bb","size":1,"artifactType":"b"},{"digest":"sha256:cc"}]}`,
			at: "a",
			want: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
				`{"mediaType":"m","digest":"sha256:aa","size":1,"artifactType":"a","annotations":{"k":"v"}}]}`,
		},
		{
			name: "none match",
			body: `{"schemaVersion":2,"manifests":[{"artifactType":"b"}]}`,
			at:   "a",
			want: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		},
		{
			name: "no manifests",
			body: `{}`,
			at:   "a",
			want: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		},
		{
			name: "malformed entries skipped",
			body: `{"manifests":[1,"x",{"artifactType":"a"}]}`,
			at:   "a",
			want: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"artifactType":"a"}]}`,
		},
		{name: "not JSON", body: `nope`, at: "a", wantErr: true},
		{name: "manifests not a list", body: `{"manifests":{}}`, at: "a", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := filterReferrers([]byte(tt.body), tt.at)
			if tt.wantErr {
				oe, _ := toOCI(err)
				if err == nil || oe.httpStatus() != http.StatusBadGateway {
					t.Errorf("filterReferrers(%q) = %s, %v; want a 502 error", tt.body, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("filterReferrers(%q, %q) (-want +got):\n%s", tt.body, tt.at, diff)
			}
			if !strings.HasPrefix(string(got), "{") {
				t.Errorf("not an object: %s", got)
			}
		})
	}
}
