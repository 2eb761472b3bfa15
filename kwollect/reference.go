package kwollect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxCollectionBody bounds a Reference API collection body (a site's
// clusters carry their metric catalogues: a few MB at most).
const maxCollectionBody = 64 << 20

// ErrIncompleteList is returned when a Reference API collection says it
// has more items (total) than it returned: such a list cannot prove that a
// name is absent.
var ErrIncompleteList = errors.New("kwollect: the Reference API returned a partial list")

// IsNotFound reports whether err is a 404 answer (an unknown site,
// cluster or node, or a wrong api_url).
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsAuthError reports whether err is a 401 or 403 answer.
func IsAuthError(err error) bool {
	s := statusOf(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// StatusOf returns the HTTP status of an *APIError or *GatewayError in
// err's chain, 0 for any other error.
func StatusOf(err error) int { return statusOf(err) }

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var ge *GatewayError
	if errors.As(err, &ge) {
		return ge.Status
	}
	return 0
}

// SiteUIDs returns the uids of the sites the Reference API lists
// (GET {base}/sites).
func (c *Client) SiteUIDs(ctx context.Context) ([]string, error) {
	return c.collectionUIDs(ctx, c.base+"/sites")
}

// SiteClusters returns the uids of a site's clusters
// (GET {base}/sites/{site}/clusters). An unknown site gives an error for
// which IsNotFound is true.
func (c *Client) SiteClusters(ctx context.Context, site string) ([]string, error) {
	return c.collectionUIDs(ctx, c.base+"/sites/"+url.PathEscape(strings.TrimSpace(site))+"/clusters")
}

// ClusterNodes returns the uids of a cluster's nodes
// (GET {base}/sites/{site}/clusters/{cluster}/nodes). An unknown site or
// cluster gives an error for which IsNotFound is true.
func (c *Client) ClusterNodes(ctx context.Context, site, cluster string) ([]string, error) {
	return c.collectionUIDs(ctx, c.base+"/sites/"+url.PathEscape(strings.TrimSpace(site))+
		"/clusters/"+url.PathEscape(strings.TrimSpace(cluster))+"/nodes")
}

// collectionUIDs reads the uid of every item of a Reference API collection
// ({"total":N,"offset":0,"items":[{"uid":...},...],...}). The body is
// decoded item by item, bounded, and only the uids are kept.
func (c *Client) collectionUIDs(ctx context.Context, u string) ([]string, error) {
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	uids, total, err := decodeCollection(io.LimitReader(resp.Body, maxCollectionBody))
	if err != nil {
		return nil, fmt.Errorf("kwollect: collection from %s: %w", u, err)
	}
	if total > len(uids) {
		return uids, fmt.Errorf("%w (%d of %d items from %s)", ErrIncompleteList, len(uids), total, u)
	}
	return uids, nil
}

// decodeCollection walks a collection object, decoding the items one at a
// time. total is -1 when the body has no "total".
func decodeCollection(r io.Reader) (uids []string, total int, err error) {
	dec := json.NewDecoder(r)
	total = -1
	if err := expectDelim(dec, '{'); err != nil {
		return nil, 0, err
	}
	sawItems := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		key, _ := tok.(string)
		switch key {
		case "items":
			sawItems = true
			if err := expectDelim(dec, '['); err != nil {
				return nil, 0, fmt.Errorf("items: %w", err)
			}
			for dec.More() {
				var item struct {
					UID string `json:"uid"`
				}
				if err := dec.Decode(&item); err != nil {
					return nil, 0, fmt.Errorf("item %d: %w", len(uids), err)
				}
				if item.UID != "" {
					uids = append(uids, item.UID)
				}
			}
			if _, err := dec.Token(); err != nil { // ]
				return nil, 0, err
			}
		case "total":
			var n int
			if err := dec.Decode(&n); err != nil {
				return nil, 0, fmt.Errorf("total: %w", err)
			}
			total = n
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, err
			}
		}
	}
	if !sawItems {
		return nil, 0, errors.New(`not a collection (no "items")`)
	}
	return uids, total, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("expected %q, got %v", d, tok)
	}
	return nil
}
