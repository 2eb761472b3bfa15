// Package kwollect is a client for the Grid'5000 Kwollect metrics API
// (GET {base}/sites/{site}/metrics), usable on its own.
//
// The pieces, from low to high level:
//
//   - Decode / DecodeWith stream-decode a response body (a JSON array) row
//     by row, never holding it in memory, and skip malformed rows and
//     elements over DecodeOptions.MaxRowBytes (1 MiB; skipped as they
//     stream, reported with their index and size). Data after the array
//     is reported (ErrTrailingData), the rows of the array kept.
//   - ParseTimestamp and FormatEpoch handle the wire time formats: the
//     server writes Europe/Paris offsets with 0-6 fraction digits, and the
//     client sends epoch seconds with microsecond precision.
//   - Client.URL builds the request URL (literal commas, as Alumet logs it,
//     no credentials); Client.Stream sends one GET and streams the rows,
//     with typed errors (*APIError, *GatewayError, *NetworkError,
//     *TruncatedError, *TimeoutError) whose messages say what to do, and
//     IsRetryable. Every GET has deadlines, with any http.Client: connect
//     (Options.ConnectTimeout, 10s, default client), response headers
//     (HeaderTimeout, 30s) and a stalled body (StallTimeout, 20s without a
//     byte).
//   - Session is the fetch engine, the one way to fetch with retries: for
//     one node or many, several sites, long and high-frequency windows, and
//     the lag-aware tail (see below). Session.StreamResume sends one query
//     the engine cannot plan (an OAR job's whole window, whose bounds
//     Kwollect fills in) with the same retries, and Retry runs any other
//     call (ClusterMetrics, the Reference API lists) through them.
//   - Client.ClusterMetrics reads a cluster's metric catalogue, and Periods
//     turns it into sampling periods for Session.
//
// # Fetch engine
//
// Client.NewSession takes a Plan (nodes on one or more sites and/or an OAR
// job, and metrics). Session.Fetch delivers every row of a window not
// delivered before:
//
//   - One query per site carries many nodes and all the metrics. The window
//     is cut into chunks [a, b-1µs] whose estimated rows (duration / period
//     × series, with the periods from SessionOptions.Periods or seen in the
//     data) stay within RowBudget; the node list is split when one second
//     of all the nodes exceeds it. Up to Concurrency queries per site run
//     at once: lanes of disjoint nodes, each fetched oldest chunk first,
//     and, in the slots the lanes leave free (one node, a few nodes), the
//     queries of their next chunks sent ahead, whose responses are read in
//     order at their turn (SessionOptions.NoPrefetch).
//   - Rows are streamed from the body into batches of BatchSize handed to
//     the sink one call at a time: memory stays flat whatever the window.
//   - Failed queries are retried with exponential backoff and jitter
//     (RetryPolicy), honouring Retry-After, by one retry loop for every query,
//     which sleeps with SessionOptions.Sleep, so that tests run it on a fake
//     clock; a retry resumes after what was delivered. Kwollect's "too much data" error splits the chunk and
//     lowers the budget. Chunks that still fail are reported (*PartialError)
//     while the others are delivered; 4xx errors stop everything.
//   - The session keeps, per (node, metric), the time spans verified
//     complete (Kwollect ingests the rows of a device and metric in time
//     order, so a row seen proves the older ones visible), and the rows at
//     their edges. Rows inside them are dropped, so overlapping or repeated
//     Fetch calls never deliver a row twice, and a later Fetch only asks for
//     what is not verified: run mode polls Fetch(max(start, Watermark()),
//     now) with neither gaps nor duplicates, also across API outages.
//   - Session.Complete then waits for the tail Kwollect has not ingested
//     yet, querying only the incomplete nodes and metrics, and
//     Session.Coverage says what each (node, metric) covers.
//   - A call's deadline (ctx's, Complete's) is one budget for all its
//     queries and retries: each query ends by it, none starts after it, and
//     the call returns within about a second of it whatever the server
//     does. errors.Is tells context.Canceled (the caller) from
//     context.DeadlineExceeded (the budget) from the server's errors.
//   - A body's anomalies do not fail its query but are counted in the
//     Report: rows repeating the previous row of their series (dropped,
//     Duplicates), oversized elements (skipped, Oversized) and data after
//     the array (Trailing).
//
// Credentials are only sent as HTTP Basic auth, only over https (or http to
// a loopback emulator), and never appear in URLs or errors.
package kwollect
