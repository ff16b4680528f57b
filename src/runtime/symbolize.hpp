#pragma once
// Names a code address for task dumps: "function(args)" from the module's symbol table, or
// "module+0xoffset" (for addr2line) when the module has no symbol for it. Private to the library.

#include <string>

namespace spindle::detail {

std::string describe_function(const void* address);

}  // namespace spindle::detail
