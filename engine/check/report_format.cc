// qemu-img 7.2's check output, reproduced from a CheckReport: the per-finding stderr lines, the
// human summary, the JSON object (keys in the order qemu-img's QDict emits them) and the exit
// code.
#include <fmt/format.h>

#include <string>

#include "engine/check/check.h"

namespace crashsim {
namespace {

bool Completed(const CheckReport& r) { return r.status.ok(); }

// What qemu-img prints after each refcount overflow it leaves: the only fix is a wider refcount
// entry (or a copy), which no check can make.
constexpr const char* kRefcountOverflowHint =
    "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a "
    "clean copy if the image cannot be opened for writing\n";

}  // namespace

std::string FormatCheckFindings(const CheckReport& report) {
  std::string out;
  for (const Finding& f : report.findings) {
    if (f.kind == FindingKind::kOverlap) continue;  // annotations; the refcount lines count
    out += f.message;
    out += '\n';
    if (f.kind == FindingKind::kRefcountOverflow && !f.repaired) out += kRefcountOverflowHint;
  }
  return out;
}

std::string CheckFailure(const CheckReport& report) {
  if (!Completed(report)) return "Check failed: " + report.status.message();
  return report.check_errors ? "Check failed" : "";
}

std::string FormatCheckHuman(const CheckReport& report) {
  if (!Completed(report)) return "";
  std::string out;
  if (report.double_checked) {
    out += fmt::format(
        "The following inconsistencies were found and repaired:\n\n"
        "    {} leaked clusters\n    {} corruptions\n\n"
        "Double checking the fixed image now...\n",
        report.leaks_fixed, report.corruptions_fixed);
  }
  if (!(report.corruptions || report.leaks || report.check_errors)) {
    out += "No errors were found on the image.\n";
  } else {
    if (report.corruptions) {
      out += fmt::format(
          "\n{} errors were found on the image.\nData may be corrupted, or further "
          "writes to the image may corrupt it.\n",
          report.corruptions);
    }
    if (report.leaks) {
      out += fmt::format(
          "\n{} leaked clusters were found on the image.\nThis means waste of disk "
          "space, but no harm to data.\n",
          report.leaks);
    }
    if (report.check_errors) {
      out += fmt::format("\n{} internal errors have occurred during the check.\n",
                         report.check_errors);
    }
  }
  if (report.total_clusters != 0 && report.allocated_clusters != 0) {
    const double allocated = static_cast<double>(report.allocated_clusters);
    out += fmt::format(
        "{}/{} = {:.2f}% allocated, {:.2f}% fragmented, {:.2f}% compressed "
        "clusters\n",
        report.allocated_clusters, report.total_clusters,
        allocated * 100.0 / static_cast<double>(report.total_clusters),
        static_cast<double>(report.fragmented_clusters) * 100.0 / allocated,
        static_cast<double>(report.compressed_clusters) * 100.0 / allocated);
  }
  if (report.image_end_offset) {
    out += fmt::format("Image end offset: {}\n", report.image_end_offset);
  }
  return out;
}

std::string FormatCheckJson(const CheckReport& report, const std::string& filename) {
  if (!Completed(report)) return "";
  // qemu-img serialises a QDict, whose iteration order is its hash order; this is that order.
  std::string body;
  auto add = [&body](const std::string& key, const std::string& value) {
    if (!body.empty()) body += ",\n";
    body += "    \"" + key + "\": " + value;
  };
  auto add_nonzero = [&add](const char* key, uint64_t value) {
    if (value != 0) add(key, std::to_string(value));
  };
  std::string escaped;
  for (char c : filename) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
      escaped += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      escaped += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      escaped += c;
    }
  }
  add_nonzero("image-end-offset", report.image_end_offset);
  add_nonzero("compressed-clusters", report.compressed_clusters);
  add_nonzero("total-clusters", report.total_clusters);
  add_nonzero("corruptions", static_cast<uint64_t>(report.corruptions));
  add_nonzero("corruptions-fixed", static_cast<uint64_t>(report.corruptions_fixed));
  add("check-errors", std::to_string(report.check_errors));
  add_nonzero("leaks", static_cast<uint64_t>(report.leaks));
  add_nonzero("leaks-fixed", static_cast<uint64_t>(report.leaks_fixed));
  add_nonzero("allocated-clusters", report.allocated_clusters);
  add("filename", "\"" + escaped + "\"");
  add("format", "\"qcow2\"");
  add_nonzero("fragmented-clusters", report.fragmented_clusters);
  return "{\n" + body + "\n}\n";
}

int CheckExitCode(const CheckReport& report) {
  if (report.not_qcow2) return 63;
  if (!report.status.ok() || report.check_errors) return 1;
  if (report.corruptions) return 2;
  if (report.leaks) return 3;
  return 0;
}

}  // namespace crashsim
