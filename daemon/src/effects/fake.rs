//! In-memory fakes of every seam, with fault injection (filled in below).
