package api_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/streamjoin/streamjoin/internal/api"
)

// specClient sends requests to a test server and checks every answer
// against openapi.json (api.CheckAgainstSpec).
type specClient struct {
	t    testing.TB
	base string
}

// get sends GET path with headers (name, value pairs) and returns the
// answer, once checked against the spec.
func (c specClient) get(path string, headers ...string) (int, http.Header, []byte) {
	c.t.Helper()
	return c.do(http.MethodGet, path, headers...)
}

func (c specClient) do(method, path string, headers ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return doChecked(c.t, req)
}

// doChecked sends req and checks the answer against the spec.
func doChecked(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	api.CheckAgainstSpec(t, req, resp.StatusCode, resp.Header, body)
	return resp.StatusCode, resp.Header, body
}
