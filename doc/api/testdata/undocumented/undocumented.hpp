/// \file
/// The warning policy's own test (doc/api.md): a namespace-level function of
/// a public header without documentation must fail doc-api.
#pragma once

/// The policy's test namespace.
namespace vfiokit_doc_test {

unsigned long page_align(unsigned long len);

}  // namespace vfiokit_doc_test
