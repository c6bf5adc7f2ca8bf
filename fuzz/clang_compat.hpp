// Forced into every object of the fuzz build (-include, meson.build).
//
// libstdc++ 12's <expected> is guarded by __cpp_concepts >= 202002L, which
// clang (before 19) does not claim although clang 16 implements what that
// header needs (P0848, conditionally trivial special members). Without
// this, std::expected, and so vfiokit's Result, does not exist under clang.
#pragma once

#if defined(__clang__) && defined(__cpp_concepts) && __cpp_concepts < 202002L
#undef __cpp_concepts
#define __cpp_concepts 202002L
#endif
