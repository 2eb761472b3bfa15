// Package kwollect is a client for the Grid'5000 Kwollect metrics API
// (GET {base}/sites/{site}/metrics), usable on its own.
//
// The pieces, from low to high level:
//
//   - Decode / DecodeWith stream-decode a response body (a JSON array) row
//     by row, never holding it in memory, and skip malformed rows.
//   - ParseTimestamp and FormatEpoch handle the wire time formats: the
//     server writes Europe/Paris offsets with 0-6 fraction digits, and the
//     client sends epoch seconds with microsecond precision.
//   - Client.URL builds the request URL (literal commas, as Alumet logs it,
//     no credentials); Client.Stream sends one GET and streams the rows,
//     with typed errors (*APIError, *GatewayError, *NetworkError,
//     *TruncatedError) whose messages say what to do, and IsRetryable.
//   - Client.FetchWindow is the lag-aware fetch of a measurement window:
//     Kwollect ingests with a delay of a few seconds, so it polls for the
//     missing tail until every (node, metric) reaches the window end or a
//     timeout passes, delivering each row once, and reports the Coverage.
//   - Client.ClusterMetrics reads a cluster's metric catalogue, and Periods
//     turns it into sampling periods for FetchWindow.
//
// Credentials are only sent as HTTP Basic auth, only over https (or http to
// a loopback emulator), and never appear in URLs or errors.
package kwollect
