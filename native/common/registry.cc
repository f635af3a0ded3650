// registry.cc — storage for MBERT_EXPORT registrations (a function-local static,
// so registration order across translation units does not matter).
#include "common/registry.h"

namespace mbert {

static std::vector<ExportEntry*>& entries() {
  static std::vector<ExportEntry*> all;
  return all;
}

int register_export(const char* ns, const char* name, ExportFn fn) {
  auto& all = entries();
  all.push_back(new ExportEntry{ns, name, fn});
  return static_cast<int>(all.size()) - 1;
}

const std::vector<ExportEntry*>& registered_exports() { return entries(); }

}  // namespace mbert
