//! Reference scheduler machine (being written).
