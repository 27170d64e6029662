/* A stand-in for Coral's libedgetpu.so.1 (edgetpu_c.h, libedgetpu 16.0) for the Edge TPU loader's
 * tests: FAKE_DEVICES (a -D at build time) devices, and a TFLite delegate that claims no node, so
 * the model runs on the CPU while LiteRT goes through the whole registration: create, Prepare,
 * free. Each call is appended to the file FAKE_LOG names (a -D at build time). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct edgetpu_device {
  int type; /* enum edgetpu_device_type: 0 PCI, 1 USB */
  const char* path;
};

/* The leading fields of TFLite's TfLiteDelegate (common.h), zeroed but for Prepare. */
typedef struct FakeDelegate {
  void* data_;
  int (*Prepare)(void* context, struct FakeDelegate* delegate);
  void* CopyFromBufferHandle;
  void* CopyToBufferHandle;
  void* FreeBufferHandle;
  int64_t flags;
  void* opaque_delegate_builder;
} FakeDelegate;

static void note(const char* what) {
#ifdef FAKE_LOG
  FILE* f = fopen(FAKE_LOG, "a");
#else
  FILE* f = NULL;
#endif
  if (f) {
    fprintf(f, "%s\n", what);
    fclose(f);
  }
}

static struct edgetpu_device devices[] = {{1, "/sys/bus/usb/devices/fake-1"}};

struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  *num_devices = FAKE_DEVICES;
  return FAKE_DEVICES ? devices : NULL;
}

void edgetpu_free_devices(struct edgetpu_device* dev) { (void)dev; }

static int prepare(void* context, FakeDelegate* delegate) {
  (void)context;
  (void)delegate;
  note("prepare");
  return 0; /* kTfLiteOk, nothing replaced */
}

void* edgetpu_create_delegate(int type, const char* name, const void* options, size_t n) {
  (void)options;
  (void)n;
  char line[256];
  snprintf(line, sizeof line, "create %d %s", type, name ? name : "");
  note(line);
  FakeDelegate* d = calloc(1, sizeof *d);
  if (d) d->Prepare = prepare;
  return d;
}

void edgetpu_free_delegate(void* delegate) {
  note("free");
  free(delegate);
}

const char* edgetpu_version(void) { return "fake libedgetpu 16.0"; }
