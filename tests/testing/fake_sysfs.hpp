// A throw-away directory tree that mimics /sys and /dev, for host unit tests
// of code that reads them through sysfs::Root. Header-only; tests only.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "vfiokit/eal/sysfs.hpp"

namespace vfiokit::testing {

class FakeSysfs {
public:
    FakeSysfs() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vfiokit-sysfs-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            std::abort();  // test setup only: no temp dir, no test
        dir_ = tmpl;
    }
    ~FakeSysfs() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    FakeSysfs(const FakeSysfs&) = delete;
    FakeSysfs& operator=(const FakeSysfs&) = delete;

    [[nodiscard]] sysfs::Root root() const { return sysfs::Root(dir_.string()); }

    void file(const std::string& sys_path, const std::string& contents = "") {
        auto p = host(sys_path);
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << contents;
    }
    void dir(const std::string& sys_path) { std::filesystem::create_directories(host(sys_path)); }
    void link(const std::string& sys_path, const std::string& target) {
        auto p = host(sys_path);
        std::filesystem::create_directories(p.parent_path());
        std::filesystem::remove(p);
        std::filesystem::create_symlink(target, p);
    }
    void remove(const std::string& sys_path) { std::filesystem::remove_all(host(sys_path)); }

    // A PCI device as sysfs shows it; group < 0 means no IOMMU group.
    void pci_device(const std::string& bdf, const std::string& vendor, const std::string& device,
                    const std::string& cls, int group, const std::string& driver) {
        const std::string d = "/sys/bus/pci/devices/" + bdf;
        file(d + "/vendor", vendor + "\n");
        file(d + "/device", device + "\n");
        file(d + "/subsystem_vendor", "0x1af4\n");
        file(d + "/subsystem_device", "0x1100\n");
        file(d + "/class", cls + "\n");
        file(d + "/numa_node", "-1\n");
        file(d + "/driver_override", "(null)\n");
        if (group >= 0) {
            const std::string g = "/sys/kernel/iommu_groups/" + std::to_string(group);
            link(d + "/iommu_group", "../../../../kernel/iommu_groups/" + std::to_string(group));
            link(g + "/devices/" + bdf, "../../../../bus/pci/devices/" + bdf);
        }
        if (!driver.empty()) {
            dir("/sys/bus/pci/drivers/" + driver);
            link(d + "/driver", "../../../../bus/pci/drivers/" + driver);
        }
    }

private:
    [[nodiscard]] std::filesystem::path host(const std::string& sys_path) const {
        return dir_.string() + sys_path;
    }
    std::filesystem::path dir_;
};

}  // namespace vfiokit::testing
