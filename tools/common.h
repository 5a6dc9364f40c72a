// Helpers shared by the crashsim subcommands: the registry of subcommands, error printing,
// opening an image file through PosixDevice and the engine, and qemu's number formatting.
// Subcommands never throw and never catch: the engine reports errors as Status values and each
// subcommand turns them into a message that names the file and an exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/image.h"
#include "engine/options.h"
#include "engine/status.h"
#include "properties/workload.h"

namespace crashsim::tools {

// Each subcommand file defines one of these: it adds its CLI11 subcommand to `app`, with a
// callback that stores the subcommand's exit code in `exit_code`.
using AddCommandFn = void (*)(CLI::App& app, int& exit_code);
void AddCreateCommand(CLI::App& app, int& exit_code);
void AddInfoCommand(CLI::App& app, int& exit_code);
void AddIoCommand(CLI::App& app, int& exit_code);
void AddConvertCommand(CLI::App& app, int& exit_code);
void AddCheckCommand(CLI::App& app, int& exit_code);
void AddDemoCommand(CLI::App& app, int& exit_code);

// Subcommands outside the core set register themselves from their own file, so adding one
// touches no shared file:  static const RegisterCommand kRegisterExplore(AddExploreCommand);
// (a name of its own in each file: tools/ compiles as one unity translation unit).
struct RegisterCommand {
  explicit RegisterCommand(AddCommandFn fn);
};
const std::vector<AddCommandFn>& RegisteredCommands();

inline constexpr int kExitFailure = 1;

// Prints "crashsim: <message>" to stderr and returns kExitFailure.
int Fail(std::string_view message);
// The same with the status's message alone: the code's name ("invalid argument: ") is for
// programs, not for the person reading the error.
int Fail(const Status& status);
// "PATH: message", unless the message already starts with the path.
std::string InFile(const std::string& path, const std::string& message);
// Why `path` did not open: the status's message without the path it may start with.
std::string OpenFailureReason(const std::string& path, const Status& why);
// "Could not open 'PATH': " + OpenFailureReason(path, why).
std::string CouldNotOpen(const std::string& path, const Status& why);
// Prints "crashsim: " + CouldNotOpen(path, why) and returns kExitFailure.
int FailOpen(const std::string& path, const Status& why);

// Adds "-f FMT" (qemu-img's format flag) to `cmd`; only "qcow2" is accepted.
void AddFormatFlag(CLI::App* cmd, std::string& format);
// Checks a value given with -f/-O; returns an error naming the supported formats.
Status CheckFormat(const std::string& format, std::initializer_list<std::string_view> allowed);

struct ImageOpenParams {
  bool read_only = true;
  CacheMode cache_mode = CacheMode::kWriteback;
  bool for_check = false;
  // From --image-opts (engine ParseImageOpts); QEMU's defaults otherwise.
  MetadataClasses overlap_check = kOverlapCheckCached;
  std::optional<bool> lazy_refcounts = std::nullopt;
};
// Opens `path` with PosixDevice (O_DIRECT for cache=none/directsync) and the engine, backing
// files resolved next to the image. Errors name the file.
Result<std::unique_ptr<Image>> OpenImageFile(const std::string& path,
                                             const ImageOpenParams& params);

// A workload file (properties/workload.h's text form); errors name the file.
Result<Workload> ReadWorkloadFile(const std::string& path);

// qemu's size_to_str(): "64 MiB", "196 KiB", "1.5 GiB", "0 B".
std::string SizeToStr(uint64_t bytes);
// Quotes a string for JSON output.
std::string JsonString(std::string_view s);

}  // namespace crashsim::tools
