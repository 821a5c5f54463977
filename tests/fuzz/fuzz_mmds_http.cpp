// libFuzzer target: the metadata service's HTTP side on its own -- the
// request parser on crafted bytes, then the store answering what parsed
// (paths into a JSON document, IMDSv2 token PUTs and GETs with the token
// the store just issued, TTLs of every shape), with the clock moving so
// tokens expire and are pruned.
//
// Input: requests separated by a NUL byte; each is parsed whole, and if
// complete, answered. A token issued by a PUT is offered to the next GET.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/log.hpp"
#include "mmds/http_request.hpp"
#include "mmds/metadata_store.hpp"

using namespace vnk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  static const nlohmann::json doc =
      nlohmann::json::parse(R"({"latest": {"meta-data": {"instance-id": "i-1", "tags": ["a", "b"], "n": 7}}})");
  mmds::MetadataStore store(doc, (size > 0 && (data[0] & 1) != 0));
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::string token;
  std::uint64_t now_ms = 0;
  for (std::size_t pos = 0; pos <= all.size();) {
    const std::size_t end = std::min(all.find('\0', pos), all.size());
    const std::string_view one = all.substr(pos, end - pos);
    pos = end + 1;
    mmds::HttpRequest req;
    if (mmds::parse_http_request(one, req) != mmds::HttpParse::complete) continue;
    // The views must lie inside the request they were parsed from.
    for (std::string_view v : {req.method, req.path, req.ttl, req.token})
      if (!v.empty() && (v.data() < one.data() || v.data() + v.size() > one.data() + one.size())) __builtin_trap();
    const std::string_view offered = req.token.empty() ? std::string_view(token) : req.token;
    const mmds::HttpResponse r = store.handle(req.method, req.path, req.ttl, offered, now_ms);
    if (r.status == 200 && req.method == "PUT") token = r.body;
    if (r.status < 100 || r.status > 599) __builtin_trap();
    now_ms += 1000 * (one.size() % 64);  // time passes: tokens expire
  }
  return 0;
}
