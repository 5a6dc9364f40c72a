// Parsing and expansion of target descriptions (target.h).
#include "validate/target.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "process/subprocess.h"
#include "validate/builtin_targets.h"

namespace crashsim::validate {
namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  std::string out(s.substr(b, e - b + 1));
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"')
    out = out.substr(1, out.size() - 2);
  return out;
}

std::vector<std::string> SplitOn(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.push_back(Trim(s.substr(start, end == std::string_view::npos ? end : end - start)));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<TargetSpec> TargetSpec::Parse(std::string_view text, std::string_view name) {
  TargetSpec spec;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format("{}:{}: expected 'key = value'", name, number));
    }
    std::string key = Trim(std::string_view(line).substr(0, eq));
    // The value keeps its spaces up to a closing quote (the prompt ends in one).
    std::string value = Trim(std::string_view(line).substr(eq + 1));
    if (key == "name")
      spec.name = value;
    else if (key == "version")
      spec.version = value;
    else if (key == "create")
      spec.create = value;
    else if (key == "drive")
      spec.drive = value;
    else if (key == "prompt")
      spec.prompt = value;
    else if (key == "errors")
      spec.errors = SplitOn(value, '|');
    else if (key == "check")
      spec.check = value;
    else if (key == "write_file")
      spec.write_file = value;
    else if (key == "read")
      spec.read = value;
    else if (key.rfind("op.", 0) == 0)
      spec.ops[key.substr(3)] = value;
    else if (key.rfind("repair.", 0) == 0)
      spec.repairs.emplace_back(key.substr(7), value);
    else
      return Status::InvalidArgument(fmt::format("{}:{}: unknown key '{}'", name, number, key));
  }
  for (auto [key, value] : {std::pair<const char*, const std::string*>{"name", &spec.name},
                            {"create", &spec.create},
                            {"drive", &spec.drive},
                            {"prompt", &spec.prompt}}) {
    if (value->empty())
      return Status::InvalidArgument(fmt::format("{}: '{}' is required", name, key));
  }
  for (const char* op : {"write", "flush", "close"}) {
    if (!spec.ops.count(op)) {
      return Status::InvalidArgument(fmt::format("{}: 'op.{}' is required", name, op));
    }
  }
  return spec;
}

Result<TargetSpec> TargetSpec::Load(const std::string& name_or_path) {
  if (name_or_path == "qemu") return Parse(kBuiltinQemuTarget, "qemu.target (built in)");
  std::ifstream in(name_or_path);
  if (!in) {
    return Status::NotFound(
        fmt::format("no built-in target '{}' and no such file (built in: qemu)", name_or_path));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return Parse(buf.str(), name_or_path);
}

Result<std::string> Expand(std::string_view text, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '{') {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i);
    if (close == std::string_view::npos) return Status::InvalidArgument("unclosed '{' in template");
    std::string key(text.substr(i + 1, close - i - 1));
    auto it = vars.find(key);
    if (it == vars.end()) {
      return Status::InvalidArgument(fmt::format("unknown placeholder {{{}}} in '{}'", key, text));
    }
    out += it->second;
    i = close + 1;
  }
  return out;
}

Result<std::vector<std::string>> ExpandCommand(std::string_view text,
                                               const std::map<std::string, std::string>& vars) {
  // Split first, so that an expanded value (a path with spaces) stays one word.
  std::vector<std::string> words = SplitWords(text);
  for (std::string& w : words) {
    ASSIGN_OR_RETURN(w, Expand(w, vars));
  }
  if (words.empty()) return Status::InvalidArgument("empty command template");
  return words;
}

bool AnswerIsError(const TargetSpec& spec, std::string_view answer) {
  for (const std::string& word : spec.errors) {
    if (!word.empty() && answer.find(word) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace crashsim::validate
