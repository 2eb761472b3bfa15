package kwollect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

func emulatorClient(t *testing.T) *Client {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 1})
	require.NoError(t, err)
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); emu.Close() })
	c, err := NewClient(Options{BaseURL: srv.URL + "/stable"})
	require.NoError(t, err)
	return c
}

func TestReferenceLists(t *testing.T) {
	c := emulatorClient(t)
	ctx := context.Background()

	sites, err := c.SiteUIDs(ctx)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(Sites, sites))

	clusters, err := c.SiteClusters(ctx, "lyon")
	require.NoError(t, err)
	require.Empty(t, cmp.Diff([]string{"gemini", "nova", "orion", "taurus"}, clusters))

	nodes, err := c.ClusterNodes(ctx, "lyon", "taurus")
	require.NoError(t, err)
	require.Len(t, nodes, 16)
	require.Equal(t, "taurus-1", nodes[0])
	require.Equal(t, "taurus-16", nodes[15])

	tests := []struct {
		name string
		call func() error
	}{
		{"unknown site", func() error { _, err := c.SiteClusters(ctx, "lyom"); return err }},
		{"unknown cluster", func() error { _, err := c.ClusterNodes(ctx, "lyon", "tauros"); return err }},
		{"site case matters", func() error { _, err := c.ClusterNodes(ctx, "Lyon", "taurus"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			require.True(t, IsNotFound(err), "%v", err)
			require.False(t, IsAuthError(err))
			var ge *GatewayError
			require.True(t, errors.As(err, &ge))
		})
	}
}

func TestReferenceListErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  func(t *testing.T, uids []string, err error)
	}{
		{"partial list", 200, `{"total":3,"offset":0,"items":[{"uid":"a-1"},{"uid":"a-2"}],"links":[]}`, func(t *testing.T, uids []string, err error) {
			require.ErrorIs(t, err, ErrIncompleteList)
			require.Equal(t, []string{"a-1", "a-2"}, uids)
		}},
		{"not a collection", 200, `[1,2]`, func(t *testing.T, _ []string, err error) {
			require.Error(t, err)
			require.False(t, IsNotFound(err))
		}},
		{"no items", 200, `{"total":0}`, func(t *testing.T, _ []string, err error) {
			require.ErrorContains(t, err, "not a collection")
		}},
		{"truncated", 200, `{"items":[{"uid":"a-1"},{"ui`, func(t *testing.T, _ []string, err error) {
			require.Error(t, err)
		}},
		{"401", 401, `Unauthorized`, func(t *testing.T, _ []string, err error) {
			require.True(t, IsAuthError(err))
			require.Equal(t, 401, StatusOf(err))
		}},
		{"503", 503, `<html>down</html>`, func(t *testing.T, _ []string, err error) {
			require.True(t, IsRetryable(err))
			require.False(t, IsNotFound(err))
		}},
		{"items without uid skipped", 200, `{"items":[{"uid":"a-1"},{"x":1}],"total":2}`, func(t *testing.T, uids []string, err error) {
			require.ErrorIs(t, err, ErrIncompleteList, "total counts 2 items, only one is usable")
			require.Equal(t, []string{"a-1"}, uids)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := NewClient(Options{BaseURL: srv.URL + "/stable"})
			require.NoError(t, err)
			uids, err := c.ClusterNodes(context.Background(), "lyon", "a")
			tt.check(t, uids, err)
		})
	}
}
