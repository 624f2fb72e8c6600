// PENDING (gguf helper): placeholders so the library links while the real code is written.
// Delete this file when the real definitions exist. Nothing here may ship.
#include "core/status.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"

namespace pi {
pi_status gguf_file::open(const std::string & path, const gguf_open_options &, std::unique_ptr<gguf_file> *) {
    return fail(PI_ERR_INTERNAL, "%s: gguf reader not written yet", path.c_str());
}
gguf_file::~gguf_file() {}
int gguf_file::find_key(const std::string &) const { return -1; }
const gguf_tensor * gguf_file::find_tensor(const std::string &) const { return nullptr; }
bool gguf_file::get_str(const std::string &, std::string *) const { return false; }
bool gguf_file::get_u32(const std::string &, uint32_t *) const { return false; }
bool gguf_file::get_i32(const std::string &, int32_t *) const { return false; }
bool gguf_file::get_u64(const std::string &, uint64_t *) const { return false; }
bool gguf_file::get_f32(const std::string &, float *) const { return false; }
bool gguf_file::get_bool(const std::string &, bool *) const { return false; }
const std::vector<std::string> * gguf_file::get_str_array(const std::string &) const { return nullptr; }
bool gguf_file::get_f32_array(const std::string &, std::vector<float> *) const { return false; }
bool gguf_file::get_i32_array(const std::string &, std::vector<int32_t> *) const { return false; }
std::string gguf_file::value_string(size_t) const { return std::string(); }

gguf_writer::gguf_writer(bool sparse_magic, uint32_t alignment) : sparse_magic_(sparse_magic), alignment_(alignment) {}
void gguf_writer::add_kv(const gguf_kv &) {}
void gguf_writer::add_str(const std::string &, const std::string &) {}
void gguf_writer::add_u32(const std::string &, uint32_t) {}
void gguf_writer::add_f32(const std::string &, float) {}
void gguf_writer::add_tensor(const std::string &, int32_t, int32_t, const int64_t *, const void *, uint64_t) {}
pi_status gguf_writer::write(const std::string & path) const {
    return fail(PI_ERR_INTERNAL, "%s: gguf writer not written yet", path.c_str());
}
}  // namespace pi
