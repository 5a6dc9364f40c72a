// `crashsim snapshot [-f qcow2] [-q] [-l | -c NAME | -a SNAPSHOT | -d NAME] IMG`: qemu-img
// snapshot's syntax, listing and exit codes. -c creates an internal snapshot with the next free
// numeric id (as QEMU's find_new_snapshot_id) and date 0 (no clock decides what the engine
// writes); -a reverts to the snapshot with that id, or else that name; -d deletes the first
// snapshot with that name (qemu-img matches -d by name only); -l, or no action, lists them as
// `qemu-img snapshot -l` does. Changes need a v3 image (engine/snapshot.h).
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "tools/common.h"

namespace crashsim::tools {
namespace {

struct SnapshotArgs {
  std::string format = "qcow2";
  bool list = false;
  std::string create;
  std::string apply;
  std::string remove;
  bool quiet = false;
  std::string image;
};

// QEMU's find_new_snapshot_id: one more than the largest numeric id.
std::string NextSnapshotId(const SnapshotTable& table) {
  unsigned long long largest = 0;
  for (const SnapshotEntry& e : table.entries) {
    char* end = nullptr;
    const unsigned long long id = std::strtoull(e.id.c_str(), &end, 10);
    if (!e.id.empty() && *end == '\0') largest = std::max(largest, id);
  }
  return std::to_string(largest + 1);
}

// One line of qemu-img's listing (block/qapi.c bdrv_snapshot_dump, 7.2).
std::string ListingLine(const SnapshotEntry& e) {
  const std::time_t date = static_cast<std::time_t>(e.date_sec);
  std::tm tm{};
  localtime_r(&date, &tm);
  char date_text[32];
  std::strftime(date_text, sizeof date_text, "%Y-%m-%d %H:%M:%S", &tm);
  const uint64_t ms = e.vm_clock_nsec / 1000000;
  const std::string clock = fmt::format("{:02}:{:02}:{:02}.{:03}", ms / 3600000, ms / 60000 % 60,
                                        ms / 1000 % 60, ms % 1000);
  const std::string icount = e.icount == ~uint64_t{0} ? "" : std::to_string(e.icount);
  return fmt::format("{:<9} {:<16} {:>8}{:>20}{:>13}{:>11}", e.id, e.name,
                     SizeToStr(e.vm_state_size), date_text, clock, icount);
}

int RunSnapshot(const SnapshotArgs& args) {
  Status format_ok = CheckFormat(args.format, {"qcow2"});
  if (!format_ok.ok()) return Fail(format_ok);
  const int actions = args.list + !args.create.empty() + !args.apply.empty() + !args.remove.empty();
  if (actions > 1) return Fail("Cannot mix '-l', '-a', '-c', '-d'");
  const bool writes = actions == 1 && !args.list;
  auto image = OpenImageFile(args.image, {.read_only = !writes});
  if (!image.ok()) return FailOpen(args.image, image.status());
  auto table = (*image)->Snapshots();
  if (!table.ok()) return Fail(InFile(args.image, table.status().message()));
  Status st = Status::Ok();
  std::string verb;
  if (!args.create.empty()) {
    verb = "create";
    st = (*image)->CreateSnapshot(NextSnapshotId(*table), args.create);
  } else if (!args.apply.empty()) {
    verb = "apply";
    st = (*image)->ApplySnapshot(args.apply);
  } else if (!args.remove.empty()) {
    verb = "delete";
    st = (*image)->DeleteSnapshot(args.remove);
  } else if (!table->entries.empty()) {
    fmt::print("Snapshot list:\n{:<10}{:<17}{:>8}{:>20}{:>13}{:>11}\n", "ID", "TAG", "VM SIZE",
               "DATE", "VM CLOCK", "ICOUNT");
    for (const SnapshotEntry& e : table->entries) fmt::print("{}\n", ListingLine(e));
  }
  if (!st.ok()) {
    const std::string& name = verb == "create"  ? args.create
                              : verb == "apply" ? args.apply
                                                : args.remove;
    return Fail(fmt::format("Could not {} snapshot '{}': {}", verb, name, st.message()));
  }
  Status closed = (*image)->Close();
  if (!closed.ok()) return Fail(InFile(args.image, "close failed: " + closed.message()));
  return 0;
}

}  // namespace

void AddSnapshotCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SnapshotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "snapshot", "list, create or delete internal snapshots (qemu-img snapshot)");
  AddFormatFlag(cmd, args->format);
  cmd->add_flag("-l", args->list, "list the snapshots (the default)");
  cmd->add_option("-c", args->create, "create a snapshot with this name");
  cmd->add_option("-a", args->apply, "revert to the snapshot with this id, or else this name");
  cmd->add_option("-d", args->remove, "delete the first snapshot with this name");
  cmd->add_flag("-q", args->quiet, "quiet (accepted for qemu-img compatibility)");
  cmd->add_option("image", args->image, "image file")->required();
  cmd->callback([args, &exit_code] { exit_code = RunSnapshot(*args); });
}

static const RegisterCommand kRegisterSnapshot(AddSnapshotCommand);

}  // namespace crashsim::tools
