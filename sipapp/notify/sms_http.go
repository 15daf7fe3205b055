package notify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file holds what the SMS and push gateways share: an HTTP client
// that follows no redirects, and the mapping of an answer to sent,
// retryable or permanent (ErrPermanent).

// newGatewayClient is a client that does not follow redirects (a
// redirected POST would lose its body or its credentials; a 3xx is a
// misconfigured url, reported as permanent) and that gives up after
// timeout.
func newGatewayClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// doGateway sends req and maps the outcome: 2xx is nil; 408, 429, 5xx and
// network errors (timeouts included) are retryable errors; any other
// status is an error wrapping ErrPermanent. Errors name the gateway by its
// host only: its url may carry a key in the query.
func doGateway(client *http.Client, req *http.Request, what string) error {
	host := req.URL.Host
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the url
		}
		return fmt.Errorf("%s %s: %w", what, host, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%s %s: status %d %q", what, host, code, strings.TrimSpace(string(snippet)))
	default:
		return fmt.Errorf("%s %s: status %d %q: %w", what, host, code, strings.TrimSpace(string(snippet)), ErrPermanent)
	}
}
