/// \file
/// The warning policy's own test (doc/api.md): a documentation comment that
/// names a parameter the function does not have must fail doc-api.
#pragma once

/// The policy's test namespace.
namespace vfiokit_doc_test {

/// Returns `len` rounded up to a page.
/// \param length the byte count (the parameter is called `len`).
unsigned long page_align(unsigned long len);

}  // namespace vfiokit_doc_test
