// The little HTTP/1.x request parsing the metadata service needs: request
// line, the two IMDSv2 headers, and a Content-Length body to skip.
#pragma once

#include <cstddef>
#include <string_view>

namespace vnk::mmds {

struct HttpRequest {
  std::string_view method, path;
  std::string_view ttl;    // X-metadata-token-ttl-seconds
  std::string_view token;  // X-metadata-token
};

enum class HttpParse { incomplete, complete, bad };

// Parses the request at the start of `buf` (views point into it).
HttpParse parse_http_request(std::string_view buf, HttpRequest& out);

}  // namespace vnk::mmds
