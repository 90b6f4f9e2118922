// Open-loop gRPC load generator: the native counterpart of brandsafe/loadtest/openloop.py.
//
// One process, one channel, two threads of our own: the sender sleeps (clock_nanosleep, absolute,
// CLOCK_MONOTONIC) until each request's intended send instant and starts the call; the completion
// thread drains the completion queue and timestamps each answer. Requests are pre-serialized
// protobuf bytes written by the Python side (a file of [uint32 little-endian length][bytes]
// records), sent through the generic stub as they are: no (de)serialization on the hot path. Each
// request is timed from its *intended* send instant, so a late sender or a stalled server cannot
// hide a queue (no coordinated omission).
//
//   openloop --target 127.0.0.1:50051 --requests reqs.bin --rate 500 --seconds 1
//       one step, one JSON object on stdout, exit.
//   openloop --target 127.0.0.1:50051 --requests reqs.bin --serve [--late-ms 2]
//       one step per line on stdin, a JSON object {"offsets": [s, ...], "first": k, "timeout_s": t}
//       as brandsafe.loadtest.cache_bench writes it; one JSON line per step on stdout.
//
// Step JSON: offered_rps, sent, ok, achieved_rps, latency_ms {p50, p95, p99, p99.9} (failed
// requests count as infinitely late; an infinite percentile is written as null), errors {status
// name: count}, send_lag_p99_ms, generator_cpu_pct (% of one core, whole process), wall_s, and
// with --late-ms B, late_ms (B) and late: how many requests took longer than B ms or failed (so several steps'
// tails can be pooled exactly; a p99 per step cannot be).
//
// Build: g++ -O2 -std=c++17 openloop.cc $(pkg-config --cflags --libs grpc++) -o openloop
// (Debian: apt-get install libgrpc++-dev). cache_bench builds it on first use.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

const char* kStatusNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                              "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                              "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                              "UNAUTHENTICATED"};
const int kFallbackCode = -1;  // our own "status" for an answer that is a fallback, not a verdict

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sleep_until(double t) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec += 1; ts.tv_nsec -= 1000000000L; }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double process_cpu_s() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

[[noreturn]] void die(const std::string& message, int code = 2) {
  std::fprintf(stderr, "openloop: %s\n", message.c_str());
  std::exit(code);
}

// True when top-level varint field `field` of a protobuf message is non-zero (e.g.
// ClassifyResponse.fallback): a wire-format walk, no schema.
bool varint_field_set(const std::string& buf, int field) {
  size_t at = 0;
  auto varint = [&](uint64_t* out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= buf.size()) return false;
      uint8_t byte = static_cast<uint8_t>(buf[at++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) { *out = value; return true; }
    }
    return false;
  };
  while (at < buf.size()) {
    uint64_t tag, value;
    if (!varint(&tag)) return false;
    int number = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (wire == 0) {
      if (!varint(&value)) return false;
      if (number == field) return value != 0;
    } else if (wire == 2) {
      if (!varint(&value)) return false;
      at += value;
    } else if (wire == 1) {
      at += 8;
    } else if (wire == 5) {
      at += 4;
    } else {
      return false;
    }
  }
  return false;
}

struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  size_t index = 0;
  double since = 0;
};

struct Step {
  std::vector<double> latency;  // s; +inf = failed
  std::vector<double> lag;      // s; actual - intended send instant
  std::map<int, int> errors;    // status code (or kFallbackCode) -> count
  size_t ok = 0;
  size_t done = 0;
};

class Generator {
 public:
  Generator(const std::string& target, const std::string& method, int fallback_field, std::vector<std::string> requests,
            double late_ms)
      : method_(method), fallback_field_(fallback_field), late_ms_(late_ms) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(4 * 1024 * 1024);
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
    for (const auto& r : requests) {
      grpc::Slice slice(r.data(), r.size());
      requests_.emplace_back(&slice, 1);
    }
    completer_ = std::thread([this] { Complete(); });
  }

  ~Generator() {
    cq_.Shutdown();
    completer_.join();
  }

  bool Ready(double timeout_s) {
    return channel_->WaitForConnected(std::chrono::system_clock::now() +
                                      std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  }

  size_t size() const { return requests_.size(); }

  std::string Run(const std::vector<double>& offsets, double offered, size_t first, double timeout_s) {
    const size_t n = offsets.size();
    Step step;
    step.latency.assign(n, INFINITY);
    step.lag.assign(n, 0.0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      step_ = &step;
    }
    const double cpu0 = process_cpu_s();
    const double start = now_s() + 0.002;
    const auto timeout = std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
    for (size_t i = 0; i < n; i++) {
      const double intended = start + offsets[i];
      if (intended > now_s()) sleep_until(intended);
      const double now = now_s();
      step.lag[i] = now - intended;
      auto* call = new Call;
      call->index = i;
      // Late: timed from the intended instant. Early (never by much): from the actual send.
      call->since = std::min(intended, now);
      call->context.set_deadline(std::chrono::system_clock::now() + timeout);
      call->reader = stub_->PrepareUnaryCall(&call->context, method_, requests_[(first + i) % requests_.size()], &cq_);
      call->reader->StartCall();
      call->reader->Finish(&call->response, &call->status, call);
    }
    std::unique_lock<std::mutex> lock(mu_);
    finished_.wait(lock, [&] { return step.done == n; });
    step_ = nullptr;
    const double wall = now_s() - start;
    const double cpu = process_cpu_s() - cpu0;
    lock.unlock();
    return ToJson(step, offered, wall, cpu);
  }

 private:
  void Complete() {
    void* tag;
    bool ok;
    std::string bytes;
    while (cq_.Next(&tag, &ok)) {
      const double end = now_s();
      auto* call = static_cast<Call*>(tag);
      int code = call->status.error_code();
      if (ok && code == 0 && fallback_field_ > 0) {
        std::vector<grpc::Slice> slices;
        bytes.clear();
        if (call->response.Dump(&slices).ok()) {
          for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
        if (varint_field_set(bytes, fallback_field_)) code = kFallbackCode;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (step_ != nullptr) {
          if (code == 0) {
            step_->latency[call->index] = end - call->since;
            step_->ok++;
          } else {
            step_->errors[code]++;
          }
          if (++step_->done == step_->latency.size()) finished_.notify_one();
        }
      }
      delete call;
    }
  }

  static double Higher(std::vector<double> sorted_values, double p) {  // numpy method="higher"
    if (sorted_values.empty()) return NAN;
    size_t k = static_cast<size_t>(std::ceil((sorted_values.size() - 1) * p / 100.0 - 1e-9));
    return sorted_values[std::min(k, sorted_values.size() - 1)];
  }

  static std::string Number(double v) {
    if (std::isinf(v) || std::isnan(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return buf;
  }

  std::string ToJson(Step& step, double offered, double wall, double cpu) const {
    const size_t late = std::isnan(late_ms_) ? 0
        : static_cast<size_t>(std::count_if(step.latency.begin(), step.latency.end(),
                                            [&](double s) { return !(s * 1000 <= late_ms_); }));
    std::sort(step.latency.begin(), step.latency.end());
    std::sort(step.lag.begin(), step.lag.end());
    const size_t n = step.latency.size();
    std::string out = "{\"offered_rps\": " + Number(offered) + ", \"sent\": " + std::to_string(n) +
                      ", \"ok\": " + std::to_string(step.ok) +
                      ", \"achieved_rps\": " + Number(wall > 0 ? step.ok / wall : 0) + ", \"latency_ms\": {";
    const double ps[] = {50, 95, 99, 99.9};
    const char* names[] = {"p50", "p95", "p99", "p99.9"};
    for (int k = 0; k < 4; k++) {
      out += std::string(k ? ", " : "") + "\"" + names[k] + "\": " + (n ? Number(Higher(step.latency, ps[k]) * 1000) : "null");
    }
    out += "}, \"errors\": {";
    bool comma = false;
    for (const auto& [code, count] : step.errors) {
      std::string name = code == kFallbackCode ? "FALLBACK"
                         : (code >= 0 && code <= 16) ? kStatusNames[code] : "STATUS_" + std::to_string(code);
      out += std::string(comma ? ", " : "") + "\"" + name + "\": " + std::to_string(count);
      comma = true;
    }
    out += "}, \"send_lag_p99_ms\": " + Number(n ? std::max(0.0, Higher(step.lag, 99) * 1000) : 0.0) +
           ", \"generator_cpu_pct\": " + Number(wall > 0 ? 100 * cpu / wall : 0) + ", \"wall_s\": " + Number(wall);
    if (!std::isnan(late_ms_)) out += ", \"late_ms\": " + Number(late_ms_) + ", \"late\": " + std::to_string(late);
    return out + "}";
  }

  std::string method_;
  int fallback_field_;
  double late_ms_;  // NaN: no late count in the step JSON
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::vector<grpc::ByteBuffer> requests_;
  grpc::CompletionQueue cq_;
  std::thread completer_;
  std::mutex mu_;
  std::condition_variable finished_;
  Step* step_ = nullptr;
};

std::vector<std::string> read_requests(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path);
  std::vector<std::string> out;
  uint8_t head[4];
  while (in.read(reinterpret_cast<char*>(head), 4)) {
    uint32_t n = head[0] | head[1] << 8 | head[2] << 16 | static_cast<uint32_t>(head[3]) << 24;
    std::string body(n, '\0');
    if (!in.read(body.data(), n)) die(path + ": truncated record");
    out.push_back(std::move(body));
  }
  if (out.empty()) die(path + ": no requests");
  return out;
}

std::vector<double> arrival_offsets(double rate, double duration, const std::string& arrivals, unsigned seed) {
  std::vector<double> out;
  if (arrivals == "constant") {
    const long n = std::lround(rate * duration);
    for (long i = 0; i < n; i++) out.push_back(i / rate);
    return out;
  }
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  for (double t = gap(rng); t < duration; t += gap(rng)) out.push_back(t);
  return out;
}

// The one command shape cache_bench writes: {"offsets": [...], "first": k, "timeout_s": t, "rate": r}.
bool parse_command(const std::string& line, std::vector<double>* offsets, double* offered, size_t* first,
                   double* timeout_s) {
  auto number_after = [&](const char* key, double* out) {
    const char* at = std::strstr(line.c_str(), key);
    if (at == nullptr) return false;
    at = std::strchr(at + std::strlen(key), ':');
    if (at == nullptr) return false;
    *out = std::strtod(at + 1, nullptr);
    return true;
  };
  double value;
  if (number_after("\"first\"", &value)) *first = static_cast<size_t>(value);
  if (number_after("\"timeout_s\"", &value)) *timeout_s = value;
  const char* at = std::strstr(line.c_str(), "\"offsets\"");
  if (at == nullptr || (at = std::strchr(at, '[')) == nullptr) return false;
  offsets->clear();
  for (++at;;) {
    while (*at == ' ' || *at == ',') at++;
    if (*at == ']') break;
    char* end;
    double v = std::strtod(at, &end);
    if (end == at) return false;
    offsets->push_back(v);
    at = end;
  }
  if (number_after("\"rate\"", &value)) {
    *offered = value;
  } else {
    *offered = offsets->empty() ? 0 : offsets->size() / std::max(offsets->back(), 1e-9);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, requests_path, method = "/brandsafe.v1.BrandSafety/Classify", arrivals = "poisson";
  double rate = 0, seconds = 0, timeout_s = 1.0, late_ms = NAN;
  int fallback_field = 0;
  unsigned seed = 0;
  bool serve = false;
  for (int k = 1; k < argc; k++) {
    std::string key = argv[k];
    auto value = [&]() -> std::string {
      if (k + 1 >= argc) die(key + " needs a value");
      return argv[++k];
    };
    if (key == "--target") target = value();
    else if (key == "--requests") requests_path = value();
    else if (key == "--method") method = value();
    else if (key == "--fallback-field") fallback_field = std::stoi(value());
    else if (key == "--rate") rate = std::stod(value());
    else if (key == "--seconds") seconds = std::stod(value());
    else if (key == "--arrivals") arrivals = value();
    else if (key == "--seed") seed = static_cast<unsigned>(std::stoul(value()));
    else if (key == "--timeout-s") timeout_s = std::stod(value());
    else if (key == "--late-ms") late_ms = std::stod(value());
    else if (key == "--serve") serve = true;
    else die("unknown argument " + key + " (see the comment at the top of openloop.cc)");
  }
  if (target.empty() || requests_path.empty()) die("--target and --requests are required");
  if (!serve && !(rate > 0 && seconds > 0)) die("give --rate and --seconds, or --serve");
  if (arrivals != "poisson" && arrivals != "constant") die("--arrivals must be poisson or constant");

  if (!std::isnan(late_ms) && !(late_ms > 0)) die("--late-ms must be > 0");
  Generator gen(target, method, fallback_field, read_requests(requests_path), late_ms);
  if (!gen.Ready(30)) die("could not connect to " + target, 1);
  if (!serve) {
    std::cout << gen.Run(arrival_offsets(rate, seconds, arrivals, seed), rate, 0, timeout_s) << std::endl;
    return 0;
  }
  std::cout << "{\"ready\": true, \"requests\": " << gen.size() << ", \"pid\": " << getpid() << "}" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.find("\"quit\"") != std::string::npos) break;
    std::vector<double> offsets;
    double offered = 0, step_timeout = timeout_s;
    size_t first = 0;
    if (!parse_command(line, &offsets, &offered, &first, &step_timeout)) die("bad command line: " + line.substr(0, 200));
    std::cout << gen.Run(offsets, offered, first, step_timeout) << std::endl;
  }
  return 0;
}
