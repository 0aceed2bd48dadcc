"""One module per feature, each ``decide(call, event, context) -> Step | None``:
answering_machine (H5), operator_queue (A3, A4, A6), person (A5, R5),
voicemail (V1, V2), mailbox (V1), dial_code (R2, R4), transfer (A5); common
holds the steps they share."""
