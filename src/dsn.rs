//! RFC 3464 delivery-status reader.
