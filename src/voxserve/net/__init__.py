"""Outbound network access for URLs that clients give us, behind protocols that core defines
(``core.fetching.UrlFetcher``); core itself never opens a connection."""
