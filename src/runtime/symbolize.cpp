// dladdr() only sees the dynamic symbol table, and the functions a suspended coroutine resumes into
// (GCC's "[clone .actor]", clang's ".resume") are local symbols, never exported. So the module's full
// symbol table (.symtab, present unless the binary was stripped) is read once, from the file, with
// glibc's <elf.h> definitions, and kept sorted for lookups.

#include "symbolize.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace spindle::detail {
namespace {

struct Symbol {
  std::uintptr_t start;
  std::uintptr_t size;
  std::string name;
};

// The function symbols of one ELF file, sorted by address; `relative` for position-independent files
// (their addresses count from the load base).
struct SymbolTable {
  std::vector<Symbol> symbols;
  bool relative = true;
};

SymbolTable read_symbols(const char* path) {
  SymbolTable table;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return table;
  struct stat info {};
  void* mapped = MAP_FAILED;
  if (::fstat(fd, &info) == 0 && static_cast<std::size_t>(info.st_size) >= sizeof(Elf64_Ehdr))
    mapped = ::mmap(nullptr, static_cast<std::size_t>(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) return table;
  const auto* bytes = static_cast<const unsigned char*>(mapped);
  const auto size = static_cast<std::size_t>(info.st_size);
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(bytes);
  const bool valid = std::memcmp(header->e_ident, ELFMAG, SELFMAG) == 0 && header->e_ident[EI_CLASS] == ELFCLASS64 &&
                     header->e_shoff + std::size_t{header->e_shnum} * sizeof(Elf64_Shdr) <= size;
  if (valid) {
    table.relative = header->e_type == ET_DYN;
    const auto* sections = reinterpret_cast<const Elf64_Shdr*>(bytes + header->e_shoff);
    // Prefer the full table; a stripped file still has the dynamic one.
    for (const Elf64_Word wanted : {SHT_SYMTAB, SHT_DYNSYM}) {
      for (unsigned i = 0; i < header->e_shnum && table.symbols.empty(); ++i) {
        const Elf64_Shdr& section = sections[i];
        if (section.sh_type != wanted || section.sh_link >= header->e_shnum) continue;
        const Elf64_Shdr& strings = sections[section.sh_link];
        if (section.sh_offset + section.sh_size > size || strings.sh_offset + strings.sh_size > size) continue;
        const auto* entries = reinterpret_cast<const Elf64_Sym*>(bytes + section.sh_offset);
        const std::size_t count = section.sh_size / sizeof(Elf64_Sym);
        for (std::size_t k = 0; k < count; ++k) {
          const Elf64_Sym& symbol = entries[k];
          if (ELF64_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_value == 0 || symbol.st_name >= strings.sh_size)
            continue;
          const char* name = reinterpret_cast<const char*>(bytes + strings.sh_offset + symbol.st_name);
          table.symbols.push_back(Symbol{symbol.st_value, symbol.st_size,
                                         std::string(name, strnlen(name, strings.sh_size - symbol.st_name))});
        }
      }
      if (!table.symbols.empty()) break;
    }
  }
  ::munmap(mapped, size);
  std::sort(table.symbols.begin(), table.symbols.end(),
            [](const Symbol& a, const Symbol& b) { return a.start < b.start; });
  return table;
}

const Symbol* find_symbol(const SymbolTable& table, std::uintptr_t address) {
  auto it = std::upper_bound(table.symbols.begin(), table.symbols.end(), address,
                             [](std::uintptr_t a, const Symbol& s) { return a < s.start; });
  if (it == table.symbols.begin()) return nullptr;
  --it;
  return address < it->start + std::max<std::uintptr_t>(it->size, 1) ? &*it : nullptr;
}

// GCC's actor takes the frame, whose type is nested in the coroutine: "f(f(int)::_Z1fi.Frame*)". The
// coroutine as written is the inner "f(int)".
std::string without_frame_parameter(const std::string& name) {
  const std::size_t open = name.find('(');
  if (open == std::string::npos || name.compare(open + 1, open, name, 0, open) != 0) return name;
  const std::size_t inner = 2 * open + 1;
  if (inner >= name.size() || name[inner] != '(') return name;
  int depth = 0;
  for (std::size_t i = inner; i < name.size(); ++i) {
    if (name[i] == '(') ++depth;
    if (name[i] == ')' && --depth == 0) return name.substr(0, open) + name.substr(inner, i - inner + 1);
  }
  return name;
}

std::string demangle(const std::string& mangled) {
  // GCC names the clones of a coroutine "<mangled ramp>.actor"; clang "<mangled ramp>.resume".
  std::string base = mangled;
  for (const char* suffix : {".actor", ".resume", ".cold"}) {
    if (base.size() > std::strlen(suffix) && base.ends_with(suffix)) base.resize(base.size() - std::strlen(suffix));
  }
  int status = 0;
  char* demangled = abi::__cxa_demangle(base.c_str(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : base;
  std::free(demangled);
  return without_frame_parameter(name);
}

}  // namespace

std::string describe_function(const void* address) {
  if (address == nullptr) return {};
  Dl_info info{};
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) {
    char raw[32];
    std::snprintf(raw, sizeof raw, "%p", address);
    return raw;
  }
  static std::mutex mutex;
  static std::map<std::string, SymbolTable>* tables = new std::map<std::string, SymbolTable>;  // kept for good
  const auto pc = reinterpret_cast<std::uintptr_t>(address);
  const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  {
    std::lock_guard lock(mutex);
    const char* path = info.dli_fname[0] != '\0' ? info.dli_fname : "/proc/self/exe";
    auto it = tables->find(path);
    if (it == tables->end()) it = tables->emplace(path, read_symbols(path)).first;
    if (const Symbol* symbol = find_symbol(it->second, it->second.relative ? pc - base : pc))
      return demangle(symbol->name);
  }
  char offset[48];
  std::snprintf(offset, sizeof offset, "+0x%zx", static_cast<std::size_t>(pc - base));
  return std::string(info.dli_fname) + offset;
}

}  // namespace spindle::detail
