"""The domain shared by the api, worker and inbound processes."""
