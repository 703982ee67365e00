//! Parsing raw messages into the parts a classifier reads.
