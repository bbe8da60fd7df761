"""The bridge's HTTP plumbing, each piece written once: request signatures (`signing`), JSON
errors (`errors`), and the middlewares that authenticate each sub-application of the bridge's web
server (`auth`): requests signed by the WordPress plugin under /_firm/v1, the module secret under
/_firm/internal/v1, the homeserver's hs_token under /_matrix/app/v1."""
