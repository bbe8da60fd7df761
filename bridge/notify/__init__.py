"""Notices that carry nothing: e-mail through WordPress when a message waits unread, and unread
counts for WordPress's menus (issue 13).

The bridge sees every event of the firm's rooms; the homeserver knows what each person has read.
So the bridge opens a window for each person a message may be waiting for (from the events),
and when the window's delay has passed asks the homeserver which of that person's notifications
are still unread (`GET /notifications` as the person: the homeserver's own push rules and read
receipts, public or private, from any client). Only then does it ask WordPress, signed, to send
one e-mail, under a notice id WordPress keeps, so a retry never sends twice.
"""
